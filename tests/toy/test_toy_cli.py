"""The command line: fast --help (no torch/matplotlib import), and the fig1 subcommand."""

from __future__ import annotations

import subprocess
import sys

from vae_gjs.toy.__main__ import build_parser, main


def test_help_is_fast_and_imports_nothing_heavy() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from vae_gjs.toy.__main__ import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('torch', 'matplotlib', 'scipy', 'numpy') if m in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert res.stdout.strip() == "[]"
    res = subprocess.run(
        [sys.executable, "-m", "vae_gjs.toy", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "fig1" in res.stdout and "fig2" in res.stdout


def test_parser_options() -> None:
    args = build_parser().parse_args(["fig2", "--out", "x/", "--seed", "3", "--steps", "10"])
    assert (args.figure, args.out, args.seed, args.steps) == ("fig2", "x/", 3, 10)
    assert build_parser().parse_args(["fig1"]).out == "figures/"


def test_subcommands_dispatch(monkeypatch, capsys) -> None:
    """Each subcommand calls its figure's ``run`` with the parsed options and prints the summary
    (the runs themselves are tested in test_toy_fig1.py / test_toy_fig2.py)."""
    from vae_gjs.toy import fig1, fig2

    calls = []
    monkeypatch.setattr(fig1, "run", lambda out: calls.append(("fig1", out)) or {"figure": 1})
    monkeypatch.setattr(fig2, "run", lambda out, **kw: calls.append(("fig2", out, kw)) or {"figure": 2})
    assert main(["fig1", "--out", "a/"]) == 0
    assert main(["fig2", "--out", "b/", "--seed", "5", "--steps", "7"]) == 0
    assert calls[0] == ("fig1", "a/")
    assert calls[1][:2] == ("fig2", "b/") and calls[1][2]["seed"] == 5 and calls[1][2]["steps"] == 7
    assert '"figure": 2' in capsys.readouterr().out
