"""The README stays true: its quick start and its grpcurl session work as written."""

from __future__ import annotations

import base64
import json
import re
import subprocess

from tests.harness import ROOT, Suite

README = (ROOT / "README.md").read_text()


def code_blocks(text: str) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)


def test_quick_start_is_two_commands_and_ci_runs_the_test_command() -> None:
    first = [line for line in code_blocks(README)[0].splitlines() if line.strip() and not line.startswith("#")]
    assert first == ["make run", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run:.*\n\t\$\(BIN\)/allsource-suite$", makefile, flags=re.M)
    assert re.search(
        r"^test:.*\n\t\$\(BIN\)/pytest -n 2 .*-m \"not exclusive\"\n\t\$\(BIN\)/pytest -m exclusive$",
        makefile,
        flags=re.M,
    )


def test_the_grpcurl_session_works_as_written(suite: Suite, unique: str) -> None:
    session = README.split("<!-- session")[1]
    script = code_blocks(session)[0]
    for name in ("ingest", "query", "admin"):
        default = {"ingest": 50051, "query": 50052, "admin": 50053}[name]
        script = script.replace(f"localhost:{default}", suite.address(name))
    script = script.replace("order-", f"{unique}order-")
    script = script.replace("data/bootstrap-admin.key", str(suite.data_dir / "bootstrap-admin.key"))
    result = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    out, err = result.stdout, result.stderr
    assert "allsource.v1.IngestService" in out and "grpc.health.v1.Health" in out
    assert "allsource.v1.IngestService.AppendEvents is a method" in out
    assert '"first_version": "1"' in out and '"last_version": "2"' in out
    assert '"event_type": "OrderPaid"' in out
    state = re.search(r'"state": "([^"]+)"', out)
    assert state and json.loads(base64.b64decode(state.group(1))) == {"total": 42, "status": "paid"}
    assert '"caught_up"' in out
    assert "WRONG_EXPECTED_VERSION" in err and "Code: Aborted" in err
    assert "Code: Unauthenticated" in err and "MISSING_CREDENTIALS" in err
    assert '"kind": "api_key"' in out and '"role": "ROLE_OPERATOR"' in out
    assert out.count("HEALTH_STATUS_SERVING") == 4
    assert "Failed" not in err and "command not found" not in err


def test_the_tenant_commands_work_as_written(suite: Suite, unique: str) -> None:
    session = README.split("<!-- session")[1]
    setup = "\n".join(line for line in code_blocks(session)[0].splitlines()[:3])
    script = setup + "\n" + code_blocks(README.split("<!-- tenants")[1])[0]
    tenant = f"acme-{unique[:8].lower()}"
    script = script.replace('"acme"', f'"{tenant}"').replace(
        "x-allsource-tenant: acme", f"x-allsource-tenant: {tenant}"
    )
    script = script.replace("localhost:50053", suite.address("admin"))
    script = script.replace("data/bootstrap-admin.key", str(suite.data_dir / "bootstrap-admin.key"))
    result = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    out, err = result.stdout, result.stderr
    assert result.returncode == 0 and not err, err
    assert f'"tenantId": "{tenant}"' in out or f'"tenant_id": "{tenant}"' in out
    assert '"displayName": "Acme"' in out or '"display_name": "Acme"' in out
    assert '"secret": "as_' in out
    assert "/allsource.v1.AuthService/CreateApiKey" in out and "/allsource.v1.AdminService/CreateTenant" in out
