from __future__ import annotations

import pytest

from collectors.credentials import CredentialError, env_names, load_credentials, redact


def test_names_map_to_environment_variables():
    assert env_names("corp-ro") == ("ACTIVATION_CRED_CORP_RO_USERNAME", "ACTIVATION_CRED_CORP_RO_PASSWORD")


def test_credentials_from_environment_and_file(tmp_path):
    secrets = tmp_path / "credentials.env"
    secrets.write_text("ACTIVATION_CRED_CORP_USERNAME=CORP\\reader\nACTIVATION_CRED_CORP_PASSWORD='s3cr=t'\n")
    secrets.chmod(0o600)
    env = {"ACTIVATION_CRED_DEFAULT_USERNAME": "admin", "ACTIVATION_CRED_DEFAULT_PASSWORD": "pw"}
    found = load_credentials(["corp", "default", "other"], environ=env, secrets_file=secrets)
    assert set(found) == {"corp", "default"}
    assert found["corp"].username == "CORP\\reader"
    assert found["corp"].password.get_secret_value() == "s3cr=t"
    assert "s3cr=t" not in repr(found["corp"]) and "[secure]" in str(found["corp"])


def test_shared_secrets_file_is_refused(tmp_path):
    secrets = tmp_path / "credentials.env"
    secrets.write_text("ACTIVATION_CRED_X_PASSWORD=a\n")
    secrets.chmod(0o644)
    with pytest.raises(CredentialError, match="chmod 600"):
        load_credentials(["x"], environ={}, secrets_file=secrets)


def test_redact_scrubs_passwords():
    [cred] = load_credentials(
        ["a"], environ={"ACTIVATION_CRED_A_USERNAME": "u", "ACTIVATION_CRED_A_PASSWORD": "hunter2"}
    ).values()
    assert redact("login hunter2 failed", [cred]) == "login [secure] failed"
