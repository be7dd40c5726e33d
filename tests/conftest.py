import pytest


@pytest.fixture(autouse=True)
def _no_real_endpoint(monkeypatch):
    "No test may reach a real API: the key is removed and the default endpoint points at a closed port."
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
