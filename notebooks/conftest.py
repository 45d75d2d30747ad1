"""Notebook tests (``pytest --nbval-lax notebooks``): nbval kills each notebook's kernel, so the
kernel cannot remove its scratch figure folder itself; remove those of ended kernels at the end."""


def pytest_sessionfinish(session, exitstatus):
    from pcoh.notebook import remove_stale_smoke_folders

    remove_stale_smoke_folders()
