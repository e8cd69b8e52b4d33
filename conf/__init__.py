"""The Hydra configs of vae-gjs (train.yaml, evaluate.yaml and their groups), shipped in the
wheel as the package ``vae_gjs.conf`` (src/vae_gjs/conf links here), which the entry points
compose from (``pkg://vae_gjs.conf``). Configs only: nothing to import."""
