"""`python -m utils.gpucheck` (the documented name) runs `python -m trainer.gpucheck`."""
import runpy

if __name__ == "__main__":
    runpy.run_module("trainer.gpucheck", run_name="__main__", alter_sys=True)
