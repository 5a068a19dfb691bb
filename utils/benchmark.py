"""`python -m utils.benchmark` (the name in users' notes) runs `python -m trainer.benchmark`."""
import runpy

if __name__ == "__main__":
    runpy.run_module("trainer.benchmark", run_name="__main__", alter_sys=True)
