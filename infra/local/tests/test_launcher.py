"""Tests of infra/local: launcher.py's six moto patches, its parent watchdog, and up/down.

    infra/local/bootstrap
    infra/local/.venv/bin/python -m pytest infra/local/tests -q

A session fixture runs launcher.py on a free port of 127.0.0.1 (with
CASCADE_PARENT_PID set to this process, so a killed test run leaves no
server behind) next to a tiny Lambda stand-in (http.server in a thread).

CASCADE_TEST_LAUNCHER=/path/to/other_launcher.py runs the launcher tests against
another launcher script, e.g. plain moto (.venv/.../moto/server.py) when checking
which patches a newer moto still needs.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

LOCAL_DIR = Path(__file__).resolve().parent.parent  # infra/local
LAUNCHER = Path(os.environ.get("CASCADE_TEST_LAUNCHER") or LOCAL_DIR / "launcher.py")
HOST = "127.0.0.1"
REGION = "us-east-1"
MARKER = "MotoSimulateUpdateFailure"


def _load_launcher():
    """launcher.py as a module, for its pure helpers (importing it patches nothing)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("cascade_launcher", LAUNCHER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


launcher_py = _load_launcher()
STATE_MACHINE = "cascade-recreator"
ROLE_ARN = "arn:aws:iam::123456789012:role/sfn"

# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).read()
        return True
    except OSError:
        return False


def start_launcher(port: int, log_path: Path, **env: str) -> subprocess.Popen:
    """Start the launcher on HOST:port and wait until it answers."""
    full_env = {**os.environ, "CASCADE_PARENT_PID": str(os.getpid()), **env}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(LAUNCHER), "-H", HOST, "-p", str(port)],
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while not answers(f"http://{HOST}:{port}/moto-api/"):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            pytest.fail(f"launcher did not start (exit {proc.returncode}):\n{log_path.read_text()}")
        time.sleep(0.05)
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def client(endpoint: str, service: str):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
    )


def wait_for_execution(sfn, execution_arn: str) -> dict:
    deadline = time.monotonic() + 15
    while True:
        execution = sfn.describe_execution(executionArn=execution_arn)
        if execution["status"] != "RUNNING":
            return execution
        assert time.monotonic() < deadline, f"execution still RUNNING: {execution}"
        time.sleep(0.05)


def queue_names(sqs, prefix: str) -> set[str]:
    urls = sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
    return {url.rsplit("/", 1)[-1] for url in urls}


def stack(cfn, name: str) -> dict:
    return cfn.describe_stacks(StackName=name)["Stacks"][0]


def stack_events(cfn, name: str) -> list[dict]:
    """All events of a stack, oldest first (DescribeStackEvents returns newest first)."""
    return list(reversed(cfn.describe_stack_events(StackName=name)["StackEvents"]))


def template_body(cfn, name: str) -> dict:
    body = cfn.get_template(StackName=name)["TemplateBody"]
    return json.loads(body) if isinstance(body, str) else body  # botocore decodes JSON bodies


def logical_ids(cfn, name: str) -> set[str]:
    return {r["LogicalResourceId"] for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]}


def queues_template(prefix: str, *names: str, metadata: dict | None = None, with_parameter: bool = False) -> str:
    """A template with one SQS queue per name (logical id Queue<NAME>, queue name <prefix>-<name>)."""
    resources = {}
    for n in names:
        properties: dict = {"QueueName": f"{prefix}-{n.lower()}"}
        if with_parameter:
            properties["VisibilityTimeout"] = {"Ref": "Timeout"}
        resources[f"Queue{n}"] = {"Type": "AWS::SQS::Queue", "Properties": properties}
    if metadata:
        first = f"Queue{names[0]}"
        resources[first]["Metadata"] = metadata
    template: dict = {"Resources": resources}
    if with_parameter:
        template["Parameters"] = {"Timeout": {"Type": "String", "Default": "30"}}
    return json.dumps(template)


# --------------------------------------------------------------------------- fixtures


class FakeLambda(BaseHTTPRequestHandler):
    """Lambda Invoke API stand-in. Function "boom" fails (X-Amz-Function-Error: Unhandled);
    any other function answers {"function": NAME, "qualifier": Q, "echo": <payload>}."""

    requests: list[dict] = []
    headers_seen: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server API)
        url = urlsplit(self.path)
        FakeLambda.headers_seen.append({k: v for k, v in self.headers.items() if k.startswith("X-Cascade-")})
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        payload = json.loads(body) if body else None
        parts = url.path.split("/")  # ['', '2015-03-31', 'functions', NAME, 'invocations']
        name = parts[3] if len(parts) == 5 and parts[1:3] == ["2015-03-31", "functions"] else None
        qualifier = parse_qs(url.query).get("Qualifier", [None])[0]
        FakeLambda.requests.append({"path": url.path, "function": name, "qualifier": qualifier, "payload": payload})
        if name is None:
            self._reply(404, {"message": f"unexpected path {url.path}"})
        elif name == "boom":
            self._reply(200, {"errorType": "Boom", "errorMessage": "it failed"}, {"X-Amz-Function-Error": "Unhandled"})
        else:
            self._reply(200, {"function": name, "qualifier": qualifier, "echo": payload})

    def _reply(self, status: int, obj: dict, headers: dict | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="session")
def fake_lambda():
    server = ThreadingHTTPServer((HOST, 0), FakeLambda)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{HOST}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


MOCK_CONFIG = {
    "StateMachines": {
        STATE_MACHINE: {
            "TestCases": {
                "HappyPath": {"Recreate": "RecreateOk"},
                "CaughtFailure": {"Recreate": "RecreateThrowsCaught"},
                "UncaughtFailure": {"Recreate": "RecreateThrowsUncaught"},
            }
        }
    },
    "MockedResponses": {
        "RecreateOk": {"0": {"Return": {"StatusCode": 200, "Payload": {"stack": "from-mock", "status": "UPDATE_COMPLETE"}}}},
        "RecreateThrowsCaught": {"0": {"Throw": {"Error": "Lambda.ServiceException", "Cause": "mocked failure"}}},
        "RecreateThrowsUncaught": {"0": {"Throw": {"Error": "Cascade.Unexpected", "Cause": "mocked uncaught"}}},
    },
}


@pytest.fixture(scope="session")
def endpoint(fake_lambda, tmp_path_factory):
    """URL of a launcher on a free port, forwarding Lambda to fake_lambda, with MOCK_CONFIG."""
    tmp = tmp_path_factory.mktemp("launcher")
    mock_config = tmp / "sfn-mock-config.json"
    mock_config.write_text(json.dumps(MOCK_CONFIG))
    port = free_port()
    log_path = tmp / "moto.log"
    proc = start_launcher(port, log_path, LAMBDA_FORWARD_URL=fake_lambda, SFN_MOCK_CONFIG=str(mock_config))
    yield f"http://{HOST}:{port}"
    stop(proc)


# --------------------------------------------------------------------------- (a) Lambda


def test_lambda_invoke_is_forwarded_and_payload_returned(endpoint):
    lam = client(endpoint, "lambda")
    FakeLambda.requests.clear()

    resp = lam.invoke(FunctionName="echo", Payload=json.dumps({"hello": "world"}))

    assert resp["StatusCode"] == 200
    assert "FunctionError" not in resp
    assert json.loads(resp["Payload"].read()) == {"function": "echo", "qualifier": None, "echo": {"hello": "world"}}
    assert FakeLambda.requests == [
        {"path": "/2015-03-31/functions/echo/invocations", "function": "echo", "qualifier": None, "payload": {"hello": "world"}}
    ]


def test_lambda_invoke_by_arn_forwards_name_and_qualifier(endpoint):
    lam = client(endpoint, "lambda")

    resp = lam.invoke(FunctionName="arn:aws:lambda:us-east-1:123456789012:function:refresher:live", Payload=b"{}")

    assert json.loads(resp["Payload"].read()) == {"function": "refresher", "qualifier": "live", "echo": {}}


def test_lambda_function_error_is_passed_back(endpoint):
    lam = client(endpoint, "lambda")

    resp = lam.invoke(FunctionName="boom", Payload=b'{"x": 1}')

    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    assert json.loads(resp["Payload"].read()) == {"errorType": "Boom", "errorMessage": "it failed"}


# --------------------------------------------------------------------------- (b) Step Functions

STATE_MACHINE_DEFINITION = {
    "StartAt": "Recreate",
    "States": {
        "Recreate": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "echo", "Payload.$": "$"},
            "OutputPath": "$.Payload",
            "Catch": [{"ErrorEquals": ["Lambda.ServiceException"], "ResultPath": "$.error", "Next": "Caught"}],
            "End": True,
        },
        "Caught": {"Type": "Pass", "End": True},
    },
}


@pytest.fixture(scope="module")
def state_machine_arn(endpoint):
    sfn = client(endpoint, "stepfunctions")
    return sfn.create_state_machine(
        name=STATE_MACHINE, definition=json.dumps(STATE_MACHINE_DEFINITION), roleArn=ROLE_ARN
    )["stateMachineArn"]


def run_execution(endpoint, arn: str, execution_input: dict) -> dict:
    sfn = client(endpoint, "stepfunctions")
    started = sfn.start_execution(stateMachineArn=arn, name=unique("run"), input=json.dumps(execution_input))
    return wait_for_execution(sfn, started["executionArn"])


def test_sfn_without_test_case_calls_the_forwarded_lambda(endpoint, state_machine_arn):
    """Control run: the Task really invokes Lambda (through patch (a))."""
    execution = run_execution(endpoint, state_machine_arn, {"stack": "s1"})

    assert execution["status"] == "SUCCEEDED", execution
    assert json.loads(execution["output"]) == {"function": "echo", "qualifier": None, "echo": {"stack": "s1"}}


def test_sfn_mock_test_case_returns_mocked_output(endpoint, state_machine_arn):
    FakeLambda.requests.clear()

    execution = run_execution(endpoint, f"{state_machine_arn}#HappyPath", {"stack": "s1"})

    assert execution["status"] == "SUCCEEDED", execution
    assert json.loads(execution["output"]) == {"stack": "from-mock", "status": "UPDATE_COMPLETE"}
    assert execution["stateMachineArn"] == state_machine_arn
    assert FakeLambda.requests == []  # the mock answered, not the Lambda


def test_sfn_mock_throw_is_caught(endpoint, state_machine_arn):
    execution = run_execution(endpoint, f"{state_machine_arn}#CaughtFailure", {"stack": "s1"})

    assert execution["status"] == "SUCCEEDED", execution
    output = json.loads(execution["output"])
    assert output["stack"] == "s1"
    assert output["error"] == {"Error": "Lambda.ServiceException", "Cause": "mocked failure"}


def test_sfn_mock_uncaught_throw_fails_execution(endpoint, state_machine_arn):
    execution = run_execution(endpoint, f"{state_machine_arn}#UncaughtFailure", {"stack": "s1"})

    assert execution["status"] == "FAILED", execution
    assert execution["error"] == "Cascade.Unexpected"
    assert execution["cause"] == "mocked uncaught"


def test_sfn_unknown_test_case_is_rejected(endpoint, state_machine_arn):
    sfn = client(endpoint, "stepfunctions")

    with pytest.raises(ClientError) as err:
        sfn.start_execution(stateMachineArn=f"{state_machine_arn}#NoSuchCase", name=unique("run"), input="{}")

    assert err.value.response["Error"]["Code"] == "InvalidName"
    assert "NoSuchCase" in err.value.response["Error"]["Message"]



def test_sfn_a_map_of_thousands_of_items_one_at_a_time_finishes(endpoint):
    """(q) moto's map worker recursed once per item: past ~990 items it died and the
    execution stayed RUNNING. 2,000 items, MaxConcurrency 1, each a Pass state."""
    sfn = client(endpoint, "stepfunctions")
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 1,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "One",
                    "States": {"One": {"Type": "Pass", "End": True}},
                },
                "End": True,
            }
        },
    }
    arn = sfn.create_state_machine(name=unique("long-map"), definition=json.dumps(definition), roleArn=ROLE_ARN)[
        "stateMachineArn"
    ]
    started = sfn.start_execution(stateMachineArn=arn, name=unique("run"), input=json.dumps({"items": list(range(2000))}))
    deadline = time.monotonic() + 300  # a hang, not a speed limit: the patched map ends in seconds
    while (execution := sfn.describe_execution(executionArn=started["executionArn"]))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the map of 2,000 items never finished"
        time.sleep(0.5)
    assert execution["status"] == "SUCCEEDED", execution
    assert json.loads(execution["output"]) == list(range(2000))


# --------------------------------------------------------------------------- (c) re-adding a resource


def test_cfn_removed_resource_can_be_added_again(endpoint):
    cfn, sqs = client(endpoint, "cloudformation"), client(endpoint, "sqs")
    name = unique("readd")
    both, only_a = queues_template(name, "A", "B"), queues_template(name, "A")

    cfn.create_stack(StackName=name, TemplateBody=both)
    stack_id = stack(cfn, name)["StackId"]
    assert stack(cfn, name)["StackStatus"] == "CREATE_COMPLETE"
    assert queue_names(sqs, name) == {f"{name}-a", f"{name}-b"}

    cfn.update_stack(StackName=name, TemplateBody=only_a)
    assert stack(cfn, name)["StackStatus"] == "UPDATE_COMPLETE"
    assert queue_names(sqs, name) == {f"{name}-a"}
    assert logical_ids(cfn, name) == {"QueueA"}

    cfn.update_stack(StackName=name, TemplateBody=both)
    assert stack(cfn, name)["StackStatus"] == "UPDATE_COMPLETE"
    assert queue_names(sqs, name) == {f"{name}-a", f"{name}-b"}  # recreated
    assert logical_ids(cfn, name) == {"QueueA", "QueueB"}

    cfn.delete_stack(StackName=name)
    assert stack(cfn, stack_id)["StackStatus"] == "DELETE_COMPLETE"
    assert queue_names(sqs, name) == set()


def resource_events(cfn, name: str) -> list[tuple[str, str]]:
    """(logical id, status) of every event after the stack's latest UPDATE_IN_PROGRESS, oldest first."""
    events = stack_events(cfn, name)
    start = max(i for i, e in enumerate(events) if e["LogicalResourceId"] == name and e["ResourceStatus"] == "UPDATE_IN_PROGRESS")
    return [(e["LogicalResourceId"], e["ResourceStatus"]) for e in events[start + 1 :]]


def test_cfn_update_records_each_resources_events(endpoint):
    cfn = client(endpoint, "cloudformation")
    name = unique("events")
    cfn.create_stack(StackName=name, TemplateBody=queues_template(name, "A", "B"))
    b_id = next(
        r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
        if r["LogicalResourceId"] == "QueueB"
    )

    # B removed, C added, A modified (a new attribute).
    changed = json.loads(queues_template(name, "A", "C"))
    changed["Resources"]["QueueA"]["Properties"]["DelaySeconds"] = 5
    cfn.update_stack(StackName=name, TemplateBody=json.dumps(changed))
    assert resource_events(cfn, name) == [
        ("QueueC", "CREATE_IN_PROGRESS"),
        ("QueueC", "CREATE_COMPLETE"),
        ("QueueA", "UPDATE_IN_PROGRESS"),
        ("QueueA", "UPDATE_COMPLETE"),
        (name, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
        ("QueueB", "DELETE_IN_PROGRESS"),
        ("QueueB", "DELETE_COMPLETE"),
        (name, "UPDATE_COMPLETE"),
    ]
    deleted = [e for e in stack_events(cfn, name) if e["ResourceStatus"] == "DELETE_COMPLETE"]
    assert [(e["PhysicalResourceId"], e["ResourceType"]) for e in deleted] == [(b_id, "AWS::SQS::Queue")]

    # Through a change set: the same events.
    cfn.create_change_set(
        StackName=name, ChangeSetName="readd-b", ChangeSetType="UPDATE", TemplateBody=queues_template(name, "A", "B", "C")
    )
    cfn.execute_change_set(StackName=name, ChangeSetName="readd-b")
    assert resource_events(cfn, name) == [
        ("QueueB", "CREATE_IN_PROGRESS"),
        ("QueueB", "CREATE_COMPLETE"),
        ("QueueA", "UPDATE_IN_PROGRESS"),
        ("QueueA", "UPDATE_COMPLETE"),
        (name, "UPDATE_COMPLETE"),
    ]


def test_cfn_stack_creates_its_own_secret_tagged_and_referable(endpoint):
    cfn, sm = client(endpoint, "cloudformation"), client(endpoint, "secretsmanager")
    name = unique("own-secret")
    template = {
        "Resources": {
            "DbSecret": {
                "Type": "AWS::SecretsManager::Secret",
                "Properties": {
                    "Name": f"{name}/db",
                    "GenerateSecretString": {"SecretStringTemplate": '{"username":"app"}', "GenerateStringKey": "password"},
                },
            },
            "Pointer": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": f"/{name}/pointer", "Type": "String", "Value": {"Ref": "DbSecret"}},
            },
        },
        "Outputs": {"SecretArn": {"Value": {"Ref": "DbSecret"}}},
    }
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))
    described = stack(cfn, name)
    assert described["StackStatus"] == "CREATE_COMPLETE"
    arn = described["Outputs"][0]["OutputValue"]
    secret = sm.describe_secret(SecretId=arn)
    assert secret["Name"] == f"{name}/db" and secret["ARN"] == arn
    tags = {t["Key"]: t["Value"] for t in secret["Tags"]}
    assert tags["aws:cloudformation:stack-id"] == described["StackId"]
    assert tags["aws:cloudformation:logical-id"] == "DbSecret"
    assert tags["aws:cloudformation:stack-name"] == name
    value = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
    assert value["username"] == "app" and len(value["password"]) >= 20
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
    }
    assert physical["DbSecret"] == arn

    # Kept by an update of another resource; deleted with the stack.
    template["Resources"]["Pointer"]["Properties"]["Description"] = "changed"
    cfn.update_stack(StackName=name, TemplateBody=json.dumps(template))
    assert sm.describe_secret(SecretId=arn)["ARN"] == arn
    cfn.delete_stack(StackName=name)
    assert f"{name}/db" not in {s["Name"] for s in sm.list_secrets()["SecretList"]}


# --------------------------------------------------------------------------- (d) simulated failure


def test_cfn_update_with_marker_rolls_back_and_changes_nothing(endpoint):
    cfn, sqs = client(endpoint, "cloudformation"), client(endpoint, "sqs")
    name = unique("fail")
    original = queues_template(name, "A", "B", with_parameter=True)
    # The failing update would change a parameter, add QueueC and remove QueueB.
    failing = queues_template(name, "A", "C", with_parameter=True, metadata={"Test": MARKER})
    fixed = queues_template(name, "A", "C", with_parameter=True)

    cfn.create_stack(StackName=name, TemplateBody=original, Parameters=[{"ParameterKey": "Timeout", "ParameterValue": "30"}])
    events_before = len(stack_events(cfn, name))

    cfn.update_stack(StackName=name, TemplateBody=failing, Parameters=[{"ParameterKey": "Timeout", "ParameterValue": "60"}])

    after = stack(cfn, name)
    assert after["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert MARKER in after["StackStatusReason"] and "QueueA" in after["StackStatusReason"]
    assert after["Parameters"] == [{"ParameterKey": "Timeout", "ParameterValue": "30"}]
    assert template_body(cfn, name) == json.loads(original)
    assert logical_ids(cfn, name) == {"QueueA", "QueueB"}
    assert queue_names(sqs, name) == {f"{name}-a", f"{name}-b"}

    new_events = stack_events(cfn, name)[events_before:]
    stack_level = [e for e in new_events if e["ResourceType"] == "AWS::CloudFormation::Stack"]
    assert [e["ResourceStatus"] for e in stack_level] == [
        "UPDATE_IN_PROGRESS",
        "UPDATE_ROLLBACK_IN_PROGRESS",
        "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
        "UPDATE_ROLLBACK_COMPLETE",
    ]
    assert MARKER in stack_level[1]["ResourceStatusReason"]
    failed = [e for e in new_events if e["ResourceStatus"] == "UPDATE_FAILED"]
    assert [(e["LogicalResourceId"], e["ResourceType"]) for e in failed] == [("QueueA", "AWS::SQS::Queue")]

    # The next update works.
    cfn.update_stack(StackName=name, TemplateBody=fixed, Parameters=[{"ParameterKey": "Timeout", "ParameterValue": "60"}])
    after = stack(cfn, name)
    assert after["StackStatus"] == "UPDATE_COMPLETE"
    assert "StackStatusReason" not in after
    assert after["Parameters"] == [{"ParameterKey": "Timeout", "ParameterValue": "60"}]
    assert template_body(cfn, name) == json.loads(fixed)
    assert queue_names(sqs, name) == {f"{name}-a", f"{name}-c"}
    cfn.delete_stack(StackName=name)


def test_cfn_change_set_with_marker_fails_execution(endpoint):
    cfn, sqs = client(endpoint, "cloudformation"), client(endpoint, "sqs")
    name = unique("csfail")
    original = queues_template(name, "A")
    failing = queues_template(name, "A", "B", metadata={"Test": MARKER})
    fixed = queues_template(name, "A", "B")
    cfn.create_stack(StackName=name, TemplateBody=original)

    cs = cfn.create_change_set(StackName=name, ChangeSetName="bad", TemplateBody=failing, ChangeSetType="UPDATE")
    cfn.execute_change_set(ChangeSetName=cs["Id"])

    after = stack(cfn, name)
    assert after["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert MARKER in after["StackStatusReason"]
    assert cfn.describe_change_set(ChangeSetName=cs["Id"])["ExecutionStatus"] == "EXECUTE_FAILED"
    assert template_body(cfn, name) == json.loads(original)
    assert queue_names(sqs, name) == {f"{name}-a"}
    assert stack_events(cfn, name)[-1]["ResourceStatus"] == "UPDATE_ROLLBACK_COMPLETE"

    cs = cfn.create_change_set(StackName=name, ChangeSetName="good", TemplateBody=fixed, ChangeSetType="UPDATE")
    cfn.execute_change_set(ChangeSetName=cs["Id"])
    after = stack(cfn, name)
    assert after["StackStatus"] == "UPDATE_COMPLETE"
    assert "StackStatusReason" not in after
    assert queue_names(sqs, name) == {f"{name}-a", f"{name}-b"}
    cfn.delete_stack(StackName=name)


def test_cfn_change_set_execution_updates_outputs_and_parameters(endpoint):
    """(g) Executing an UPDATE change set is an update: outputs, parameters and tags follow."""
    cfn, sqs = client(endpoint, "cloudformation"), client(endpoint, "sqs")
    name = unique("csexec")
    with_output = json.loads(queues_template(name, "A", "B", with_parameter=True))
    with_output["Outputs"] = {"B": {"Value": {"Ref": "QueueB"}}}
    cfn.create_stack(
        StackName=name,
        TemplateBody=json.dumps(with_output),
        Parameters=[{"ParameterKey": "Timeout", "ParameterValue": "30"}],
        Tags=[{"Key": "team", "Value": "a"}],
    )
    assert [o["OutputKey"] for o in stack(cfn, name)["Outputs"]] == ["B"]
    without_b = json.loads(queues_template(name, "A", with_parameter=True))
    cs = cfn.create_change_set(
        StackName=name,
        ChangeSetName="drop-b",
        TemplateBody=json.dumps(without_b),
        ChangeSetType="UPDATE",
        Parameters=[{"ParameterKey": "Timeout", "ParameterValue": "60"}],
        Tags=[{"Key": "team", "Value": "a"}],
    )
    cfn.execute_change_set(ChangeSetName=cs["Id"])
    after = stack(cfn, name)
    assert after["StackStatus"] == "UPDATE_COMPLETE"
    assert "Outputs" not in after or after["Outputs"] == []
    assert after["Parameters"] == [{"ParameterKey": "Timeout", "ParameterValue": "60"}]
    assert after["Tags"] == [{"Key": "team", "Value": "a"}]
    assert cfn.describe_change_set(ChangeSetName=cs["Id"])["ExecutionStatus"] == "EXECUTE_COMPLETE"
    assert queue_names(sqs, name) == {f"{name}-a"}
    assert [e["ResourceStatusReason"] for e in stack_events(cfn, name) if e["ResourceStatus"] == "UPDATE_IN_PROGRESS" and e["LogicalResourceId"] == name] == ["User Initiated"]
    cfn.delete_stack(StackName=name)


# --------------------------------------------------------------------------- (e) change set Replacement


def database_template(prefix: str, username: str, password: str, parameter_value: str = "v1", extra: dict | None = None) -> str:
    """An RDS instance (MasterUsername create-only, MasterUserPassword not) and an SSM parameter."""
    resources: dict = {
        "Db": {
            "Type": "AWS::RDS::DBInstance",
            "Properties": {
                "DBInstanceClass": "db.t3.micro",
                "Engine": "postgres",
                "AllocatedStorage": "20",
                "MasterUsername": username,
                "MasterUserPassword": password,
            },
        },
        "Param": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {"Name": f"/{prefix}/param", "Type": "String", "Value": parameter_value},
        },
    }
    resources.update(extra or {})
    return json.dumps({"Resources": resources})


def resource_changes(cfn, stack_name: str, change_set_name: str, template: str) -> dict[str, dict]:
    """ResourceChange by logical id of a new UPDATE change set (deleted afterwards)."""
    cs = cfn.create_change_set(
        StackName=stack_name, ChangeSetName=change_set_name, TemplateBody=template, ChangeSetType="UPDATE"
    )
    described = cfn.describe_change_set(ChangeSetName=cs["Id"])
    cfn.delete_change_set(ChangeSetName=cs["Id"])
    assert described["Status"] == "CREATE_COMPLETE", described
    return {c["ResourceChange"]["LogicalResourceId"]: c["ResourceChange"] for c in described["Changes"]}


def details(change: dict) -> list[tuple[str, str, str]]:
    return [(d["Target"]["Attribute"], d["Target"].get("Name", ""), d["Target"]["RequiresRecreation"]) for d in change["Details"]]


@pytest.fixture(scope="module")
def database_stack(endpoint):
    cfn = client(endpoint, "cloudformation")
    name = unique("createonly")
    cfn.create_stack(StackName=name, TemplateBody=database_template(name, "admin", "pw-1"))
    assert stack(cfn, name)["StackStatus"] == "CREATE_COMPLETE"
    yield name
    cfn.delete_stack(StackName=name)


def test_cfn_change_set_create_only_change_is_a_replacement(endpoint, database_stack):
    cfn = client(endpoint, "cloudformation")
    physical_id = cfn.describe_stack_resource(StackName=database_stack, LogicalResourceId="Db")[
        "StackResourceDetail"
    ]["PhysicalResourceId"]

    changes = resource_changes(cfn, database_stack, "username", database_template(database_stack, "root", "pw-2"))

    assert set(changes) == {"Db"}
    db = changes["Db"]
    assert (db["Action"], db["Replacement"], db["Scope"]) == ("Modify", "True", ["Properties"])
    assert db["PhysicalResourceId"] == physical_id
    assert details(db) == [("Properties", "MasterUserPassword", "Never"), ("Properties", "MasterUsername", "Always")]


def test_cfn_change_set_updatable_changes_are_no_replacement(endpoint, database_stack):
    cfn = client(endpoint, "cloudformation")

    password = resource_changes(cfn, database_stack, "password", database_template(database_stack, "admin", "pw-2"))
    parameter = resource_changes(cfn, database_stack, "param", database_template(database_stack, "admin", "pw-1", "v2"))

    assert {k: (v["Action"], v["Replacement"]) for k, v in password.items()} == {"Db": ("Modify", "False")}
    assert details(password["Db"]) == [("Properties", "MasterUserPassword", "Never")]
    assert {k: (v["Action"], v["Replacement"]) for k, v in parameter.items()} == {"Param": ("Modify", "False")}
    assert details(parameter["Param"]) == [("Properties", "Value", "Never")]


def test_cfn_change_set_metadata_only_change_is_no_replacement(endpoint, database_stack):
    cfn = client(endpoint, "cloudformation")
    template = json.loads(database_template(database_stack, "admin", "pw-1"))
    template["Resources"]["Param"]["Metadata"] = {"Note": "changed"}

    changes = resource_changes(cfn, database_stack, "metadata", json.dumps(template))

    assert (changes["Param"]["Replacement"], changes["Param"]["Scope"]) == ("False", ["Metadata"])
    assert details(changes["Param"]) == [("Metadata", "", "Never")]


def test_cfn_change_set_added_and_removed_resources(endpoint, database_stack):
    cfn = client(endpoint, "cloudformation")
    template = json.loads(database_template(database_stack, "admin", "pw-1", extra={"Queue": {"Type": "AWS::SQS::Queue"}}))
    del template["Resources"]["Param"]

    changes = resource_changes(cfn, database_stack, "addremove", json.dumps(template))

    assert {k: v["Action"] for k, v in changes.items()} == {"Queue": "Add", "Param": "Remove"}
    assert not any("Replacement" in v for v in changes.values())  # as in AWS: Modify only
    assert changes["Param"]["PhysicalResourceId"] == f"/{database_stack}/param"


def test_cfn_change_set_nested_and_conditional_create_only_properties(endpoint):
    """Array items (`*`), conditional create-only (RDS cluster MasterUsername) and an
    intrinsic function standing in for a create-only property."""
    cfn = client(endpoint, "cloudformation")
    name = unique("nested")

    def template(cluster_arn: object, topics: str, username: str) -> str:
        return json.dumps({
            "Parameters": {"Arn": {"Type": "String", "Default": "arn:aws:kafka:us-east-1:123456789012:cluster/b/2"}},
            "Resources": {
                # Not modelled by moto (created as a placeholder), but its schema has
                # createOnlyProperties ReplicationInfoList/*/SourceKafkaClusterArn.
                "Replicator": {
                    "Type": "AWS::MSK::Replicator",
                    "Properties": {
                        "ReplicatorName": f"{name}-replicator",
                        "ReplicationInfoList": [
                            {"SourceKafkaClusterArn": cluster_arn, "TopicReplication": {"TopicsToReplicate": [topics]}}
                        ],
                    },
                },
                "Cluster": {
                    "Type": "AWS::RDS::DBCluster",
                    "Properties": {"Engine": "aurora-postgresql", "MasterUsername": username, "MasterUserPassword": "pw-1"},
                },
            },
        })

    arn = "arn:aws:kafka:us-east-1:123456789012:cluster/a/1"
    cfn.create_stack(StackName=name, TemplateBody=template(arn, "orders", "admin"))
    try:
        topics = resource_changes(cfn, name, "topics", template(arn, "payments", "admin"))
        source = resource_changes(cfn, name, "source", template(arn.replace("/a/", "/c/"), "orders", "admin"))
        by_ref = resource_changes(cfn, name, "byref", template({"Ref": "Arn"}, "orders", "admin"))
        username = resource_changes(cfn, name, "username", template(arn, "orders", "root"))
    finally:
        cfn.delete_stack(StackName=name)

    assert {k: v["Replacement"] for k, v in topics.items()} == {"Replicator": "False"}
    assert {k: v["Replacement"] for k, v in source.items()} == {"Replicator": "True"}
    assert {k: v["Replacement"] for k, v in by_ref.items()} == {"Replicator": "True"}
    assert details(source["Replicator"]) == [("Properties", "ReplicationInfoList", "Always")]
    assert {k: v["Replacement"] for k, v in username.items()} == {"Cluster": "Conditional"}
    assert details(username["Cluster"]) == [("Properties", "MasterUsername", "Conditionally")]


# --------------------------------------------------------------------------- (f) ECS deployments

ECS_FAIL_MARKER = "cascade-test:fail-deployment"


def ecs_stack(endpoint, name: str, environment: list[dict] | None = None) -> tuple[str, str]:
    """A stack of an ECS cluster, a task definition taking a secret by ARN, and a service.
    Returns (cluster name, service name)."""
    cfn, secrets = client(endpoint, "cloudformation"), client(endpoint, "secretsmanager")
    secret_arn = secrets.create_secret(Name=f"{name}-db", SecretString='{"password": "not-logged"}')["ARN"]
    container = {
        "Name": "app",
        "Image": "public.ecr.aws/nginx/nginx:latest",
        "Memory": 128,
        "Secrets": [{"Name": "DB_PASSWORD", "ValueFrom": f"{secret_arn}:password::"}],
        "Environment": environment or [],
    }
    template = {
        "Resources": {
            "Cluster": {"Type": "AWS::ECS::Cluster", "Properties": {"ClusterName": f"{name}-cluster"}},
            "Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"Family": f"{name}-task", "ContainerDefinitions": [container]}},
            "Service": {
                "Type": "AWS::ECS::Service",
                "Properties": {"Cluster": {"Ref": "Cluster"}, "ServiceName": f"{name}-svc", "TaskDefinition": {"Ref": "Task"}, "DesiredCount": 2},
            },
        }
    }
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))
    assert stack(cfn, name)["StackStatus"] == "CREATE_COMPLETE"
    return f"{name}-cluster", f"{name}-svc"


def service(ecs, cluster: str, name: str) -> dict:
    return ecs.describe_services(cluster=cluster, services=[name])["services"][0]


def test_ecs_forced_new_deployment_completes(endpoint):
    cfn, ecs = client(endpoint, "cloudformation"), client(endpoint, "ecs")
    name = unique("ecs")
    cluster, service_name = ecs_stack(endpoint, name)
    before = service(ecs, cluster, service_name)
    resources_before = cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
    [old] = before["deployments"]
    assert (old["status"], old["rolloutState"], before["runningCount"]) == ("PRIMARY", "COMPLETED", 2)  # steady

    updated = ecs.update_service(cluster=cluster, service=service_name, forceNewDeployment=True)["service"]
    after = service(ecs, cluster, service_name)

    assert after["serviceArn"] == before["serviceArn"]
    assert updated["deployments"] == after["deployments"]
    [new] = after["deployments"]  # the old deployment is gone
    assert new["id"] != old["id"]
    assert (new["status"], new["rolloutState"]) == ("PRIMARY", "COMPLETED")
    assert new["rolloutStateReason"] == f"ECS deployment {new['id']} completed."
    assert new["taskDefinition"] == before["taskDefinition"]
    assert (new["runningCount"], new["pendingCount"], new["failedTasks"]) == (2, 0, 0)
    assert (after["runningCount"], after["pendingCount"]) == (2, 0)
    assert after["events"][0]["message"] == f"(service {service_name}) has reached a steady state."
    # A restart, not a replacement: same resources, nothing deleted.
    assert cfn.list_stack_resources(StackName=name)["StackResourceSummaries"] == resources_before
    assert not [e for e in stack_events(cfn, name) if "DELETE" in e["ResourceStatus"]]
    cfn.delete_stack(StackName=name)


def test_ecs_new_task_definition_is_a_new_deployment(endpoint):
    ecs = client(endpoint, "ecs")
    name = unique("ecstd")
    cluster, service_name = ecs_stack(endpoint, name)
    [old] = service(ecs, cluster, service_name)["deployments"]
    definition = ecs.describe_task_definition(taskDefinition=f"{name}-task")["taskDefinition"]
    revision = ecs.register_task_definition(family=f"{name}-task", containerDefinitions=definition["containerDefinitions"])

    ecs.update_service(cluster=cluster, service=service_name, taskDefinition=f"{name}-task")
    after = service(ecs, cluster, service_name)

    arn = revision["taskDefinition"]["taskDefinitionArn"]
    assert arn.endswith(":2")
    assert after["taskDefinition"] == arn
    [new] = after["deployments"]
    assert (new["id"] != old["id"], new["taskDefinition"], new["rolloutState"]) == (True, arn, "COMPLETED")


def test_ecs_deployment_failure_simulation(endpoint):
    ecs = client(endpoint, "ecs")
    name = unique("ecsfail")
    cluster, service_name = ecs_stack(endpoint, name, environment=[{"Name": "CASCADE_TEST", "Value": ECS_FAIL_MARKER}])
    [old] = service(ecs, cluster, service_name)["deployments"]

    ecs.update_service(cluster=cluster, service=service_name, forceNewDeployment=True)
    after = service(ecs, cluster, service_name)

    new, previous = after["deployments"]
    assert (new["status"], new["rolloutState"]) == ("PRIMARY", "FAILED")
    assert new["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
    assert (new["runningCount"], new["failedTasks"]) == (0, 2)
    assert (previous["id"], previous["status"], previous["rolloutState"]) == (old["id"], "ACTIVE", "COMPLETED")
    assert after["runningCount"] == 2  # the old tasks keep serving
    assert "deployment failed" in after["events"][0]["message"]


def test_ecs_deployment_failure_by_service_tag(endpoint):
    ecs = client(endpoint, "ecs")
    name = unique("ecstag")
    cluster, service_name = ecs_stack(endpoint, name)
    arn = service(ecs, cluster, service_name)["serviceArn"]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "cascade-test", "value": ECS_FAIL_MARKER}])

    ecs.update_service(cluster=cluster, service=service_name, forceNewDeployment=True)

    assert service(ecs, cluster, service_name)["deployments"][0]["rolloutState"] == "FAILED"


def test_injected_throttling_answers_in_each_protocol_then_lets_through(tmp_path):
    port = free_port()
    proc = start_launcher(
        port, tmp_path / "moto.log", CASCADE_THROTTLE="secretsmanager:DescribeSecret,cloudformation:DescribeStacks=2"
    )
    try:
        endpoint = f"http://{HOST}:{port}"
        secrets = client(endpoint, "secretsmanager")
        cfn = client(endpoint, "cloudformation")
        # JSON protocol: every DescribeSecret, nothing else.
        secrets.create_secret(Name="throttled", SecretString="x")
        for _ in range(3):
            with pytest.raises(ClientError) as error:
                secrets.describe_secret(SecretId="throttled")
            assert error.value.response["Error"]["Code"] == "ThrottlingException"
            assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert secrets.list_secrets()["SecretList"]
        # Query protocol: the first two DescribeStacks, then through.
        for _ in range(2):
            with pytest.raises(ClientError) as error:
                cfn.describe_stacks()
            assert error.value.response["Error"]["Code"] == "Throttling"
        assert cfn.describe_stacks()["Stacks"] == []
    finally:
        stop(proc)


def test_throttle_rules_parse_and_match():
    rules = launcher_py.parse_throttle_rules("secretsmanager:DescribeSecret, cloudformation:*=3")
    assert rules == {"secretsmanager:describesecret": None, "cloudformation:*": 3}
    assert launcher_py.throttle_rule_for(rules, "cloudformation", "ListStacks") == "cloudformation:*"
    assert launcher_py.throttle_rule_for(rules, "secretsmanager", "DescribeSecret") == "secretsmanager:describesecret"
    assert launcher_py.throttle_rule_for(rules, "secretsmanager", "ListSecrets") is None
    rules["cloudformation:*"] = 0
    assert launcher_py.throttle_rule_for(rules, "cloudformation", "ListStacks") is None
    with pytest.raises(SystemExit):
        launcher_py.parse_throttle_rules("DescribeSecret")


def test_ecs_rollout_can_stay_in_progress_for_some_describes(tmp_path):
    port = free_port()
    proc = start_launcher(port, tmp_path / "moto.log", ECS_ROLLOUT_DESCRIBES="2")
    try:
        endpoint = f"http://{HOST}:{port}"
        ecs = client(endpoint, "ecs")
        cluster, service_name = ecs_stack(endpoint, unique("ecsslow"))
        [old] = service(ecs, cluster, service_name)["deployments"]

        updated = ecs.update_service(cluster=cluster, service=service_name, forceNewDeployment=True)["service"]
        seen = [[(d["status"], d["rolloutState"]) for d in service(ecs, cluster, service_name)["deployments"]] for _ in range(3)]

        assert updated["deployments"][0]["rolloutState"] == "IN_PROGRESS"
        assert updated["deployments"][1]["id"] == old["id"]
        assert seen == [
            [("PRIMARY", "IN_PROGRESS"), ("ACTIVE", "COMPLETED")],
            [("PRIMARY", "IN_PROGRESS"), ("ACTIVE", "COMPLETED")],
            [("PRIMARY", "COMPLETED")],
        ]
    finally:
        stop(proc)


# --------------------------------------------------------------------------- (j) (k) SAM transform and its output

SAM_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  Level:
    Type: String
    Default: quiet
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      FifoQueue: true
  Bucket:
    Type: AWS::S3::Bucket
  BucketPolicy:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref Bucket
      PolicyDocument:
        Statement:
          - Effect: Deny
            Principal: "*"
            Action: s3:*
            Resource: !Sub ${Bucket.Arn}/*
            Condition:
              Bool:
                aws:SecureTransport: "false"
  QueuePolicy:
    Type: AWS::SQS::QueuePolicy
    Properties:
      Queues: [!Ref Queue]
      PolicyDocument:
        Statement:
          - Effect: Allow
            Principal: {Service: events.amazonaws.com}
            Action: sqs:SendMessage
            Resource: !GetAtt Queue.Arn
  Alarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/SQS
      MetricName: ApproximateNumberOfMessagesVisible
      Dimensions: [{Name: QueueName, Value: !GetAtt Queue.QueueName}]
      Statistic: Maximum
      Period: 60
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: provided.al2023
      Handler: refresh
      CodeUri: s3://%(bucket)s/code.zip
      Environment:
        Variables:
          LEVEL: !Ref Level
          QUEUE: !Ref Queue
      EventInvokeConfig:
        MaximumRetryAttempts: 0
      Policies:
        - Statement:
            - Effect: Allow
              Action: sqs:SendMessage
              Resource: !GetAtt Queue.Arn
            - !If [Never, {Effect: Allow, Action: "s3:*", Resource: "*"}, !Ref AWS::NoValue]
      Events:
        Tick:
          Type: Schedule
          Properties:
            Schedule: rate(1 minute)
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: %(prefix)s-machine
      DefinitionUri: {Bucket: %(bucket)s, Key: machine.json}
      DefinitionSubstitutions:
        WorkerArn: !GetAtt Worker.Arn
      Policies:
        - LambdaInvokePolicy: {FunctionName: !Ref Worker}
Conditions:
  Never: !Equals ["a", "b"]
Outputs:
  QueueUrl:
    Value: !Ref Queue
  MachineArn:
    Value: !Ref Machine
  WorkerName:
    Value: !Ref Worker
"""

MACHINE = {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "${WorkerArn}", "Payload": {}}, "End": True}}}


def deploy_sam_stack(endpoint: str, prefix: str, **parameters: str) -> dict[str, str]:
    """A SAM template deployed with a CREATE change set, as `sam deploy` does; its outputs."""
    s3, cfn = client(endpoint, "s3"), client(endpoint, "cloudformation")
    bucket = f"{prefix}-artifacts"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="code.zip", Body=b"PK\x05\x06" + b"\0" * 18)
    s3.put_object(Bucket=bucket, Key="machine.json", Body=json.dumps(MACHINE).encode())
    created = cfn.create_change_set(
        StackName=prefix,
        ChangeSetName="deploy",
        ChangeSetType="CREATE",
        TemplateBody=SAM_TEMPLATE % {"bucket": bucket, "prefix": prefix},
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    cfn.execute_change_set(ChangeSetName=created["Id"])
    outputs = stack(cfn, prefix).get("Outputs") or []
    return {o["OutputKey"]: o["OutputValue"] for o in outputs}


def test_sam_template_is_transformed_and_every_resource_created(endpoint):
    prefix = unique("sam")
    outputs = deploy_sam_stack(endpoint, prefix, Level="loud")
    cfn = client(endpoint, "cloudformation")

    assert stack(cfn, prefix)["StackStatus"] == "CREATE_COMPLETE"
    resources = {r["LogicalResourceId"]: r for r in cfn.list_stack_resources(StackName=prefix)["StackResourceSummaries"]}
    assert {r["ResourceType"] for r in resources.values()} >= {
        "AWS::Lambda::Function", "AWS::IAM::Role", "AWS::Events::Rule", "AWS::Lambda::Permission",
        "AWS::Lambda::EventInvokeConfig", "AWS::StepFunctions::StateMachine", "AWS::S3::BucketPolicy",
        "AWS::SQS::QueuePolicy", "AWS::CloudWatch::Alarm",
    }
    assert all(r["LogicalResourceId"] for r in resources.values()), "no empty rows"
    # (k) the FIFO queue got its suffix, the policies and the alarm exist.
    assert outputs["QueueUrl"].endswith(".fifo")
    sqs = client(endpoint, "sqs")
    assert "events.amazonaws.com" in sqs.get_queue_attributes(QueueUrl=outputs["QueueUrl"], AttributeNames=["Policy"])["Attributes"]["Policy"]
    bucket = resources["Bucket"]["PhysicalResourceId"]
    assert "aws:SecureTransport" in client(endpoint, "s3").get_bucket_policy(Bucket=bucket)["Policy"]
    assert [a["AlarmName"] for a in client(endpoint, "cloudwatch").describe_alarms()["MetricAlarms"] if a["AlarmName"] == resources["Alarm"]["PhysicalResourceId"]]
    # The function as deployed: parameters resolved, its own role with the template's policy.
    lam = client(endpoint, "lambda")
    function = lam.get_function_configuration(FunctionName=outputs["WorkerName"])
    assert function["Handler"] == "refresh"
    assert function["Environment"]["Variables"] == {"LEVEL": "loud", "QUEUE": outputs["QueueUrl"]}
    assert lam.get_function_event_invoke_config(FunctionName=outputs["WorkerName"])["MaximumRetryAttempts"] == 0
    iam = client(endpoint, "iam")
    role = function["Role"].rsplit("/", 1)[-1]
    [policy_name] = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
    assert document["Statement"] == [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": document["Statement"][0]["Resource"]}]
    assert [p["PolicyName"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]] == ["AWSLambdaBasicExecutionRole"]
    # The state machine: from S3, substitutions applied, where the API looks.
    sfn = client(endpoint, "stepfunctions")
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=outputs["MachineArn"])["definition"])
    assert definition["States"]["Work"]["Parameters"]["FunctionName"].endswith(f":function:{outputs['WorkerName']}")
    # GetTemplate gives the template as submitted; the processed one on request.
    assert "AWS::Serverless::Function" in cfn.get_template(StackName=prefix)["TemplateBody"]
    processed = cfn.get_template(StackName=prefix, TemplateStage="Processed")["TemplateBody"]
    assert "AWS::Serverless::Function" not in json.dumps(processed)


def test_a_template_url_on_the_local_endpoint_is_read_as_sam_deploy_passes_it(endpoint):
    prefix = unique("samurl")
    s3, cfn = client(endpoint, "s3"), client(endpoint, "cloudformation")
    s3.create_bucket(Bucket=prefix)
    s3.put_object(Bucket=prefix, Key="t/packaged.template", Body=queues_template(prefix, "One").encode())

    created = cfn.create_change_set(
        StackName=prefix, ChangeSetName="deploy", ChangeSetType="CREATE",
        TemplateURL=f"{endpoint}/{prefix}/t/packaged.template",
    )
    cfn.execute_change_set(ChangeSetName=created["Id"])

    assert stack(cfn, prefix)["StackStatus"] == "CREATE_COMPLETE"
    assert logical_ids(cfn, prefix) == {"QueueOne"}


def test_sam_template_the_transform_rejects_is_a_validation_error(endpoint):
    cfn = client(endpoint, "cloudformation")
    bad = "Transform: AWS::Serverless-2016-10-31\nResources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Runtime: provided.al2023\n"
    with pytest.raises(ClientError) as e:
        cfn.create_stack(StackName=unique("badsam"), TemplateBody=bad, Capabilities=["CAPABILITY_AUTO_EXPAND"])
    assert e.value.response["Error"]["Code"] == "ValidationError"
    assert "Transform AWS::Serverless-2016-10-31 failed" in e.value.response["Error"]["Message"]


def test_schedule_rule_takes_no_event_and_a_lambda_target_is_invoked(endpoint):
    prefix = unique("samrule")
    outputs = deploy_sam_stack(endpoint, prefix)
    events = client(endpoint, "events")
    rule = f"{prefix}-to-worker"
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": [prefix]}))
    worker_arn = client(endpoint, "lambda").get_function_configuration(FunctionName=outputs["WorkerName"])["FunctionArn"]
    events.put_targets(Rule=rule, Targets=[{"Id": "worker", "Arn": worker_arn}])
    FakeLambda.requests.clear()

    put = events.put_events(Entries=[{"Source": prefix, "DetailType": "x", "Detail": "{}"}])

    assert put["FailedEntryCount"] == 0
    deadline = time.monotonic() + 10
    while not FakeLambda.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    # Delivered once, by the pattern rule; the schedule rule of the stack took nothing.
    assert [r["function"] for r in FakeLambda.requests] == [outputs["WorkerName"]]


# --------------------------------------------------------------------------- (a) + (l) functions under their roles


def test_forwarded_invoke_carries_handler_environment_and_role_credentials(endpoint):
    outputs = deploy_sam_stack(endpoint, unique("samenv"), Level="debug")
    FakeLambda.requests.clear()
    FakeLambda.headers_seen.clear()

    client(endpoint, "lambda").invoke(FunctionName=outputs["WorkerName"], Payload=b"{}")

    [headers] = FakeLambda.headers_seen
    assert headers["X-Cascade-Handler"] == "refresh"
    environment = json.loads(headers["X-Cascade-Environment"])
    assert environment["LEVEL"] == "debug" and environment["_HANDLER"] == "refresh"
    assert environment["AWS_ACCESS_KEY_ID"].startswith("ASIA") and environment["AWS_SESSION_TOKEN"]
    identity = boto3.client(
        "sts", endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=environment["AWS_SESSION_TOKEN"],
    ).get_caller_identity()
    assert ":assumed-role/" in identity["Arn"] and "WorkerRole" in identity["Arn"]


def test_iam_enforcement_allows_the_role_its_actions_only(tmp_path, fake_lambda):
    port = free_port()
    proc = start_launcher(port, tmp_path / "moto.log", CASCADE_IAM_ENFORCEMENT="1", LAMBDA_FORWARD_URL=fake_lambda)
    try:
        endpoint = f"http://{HOST}:{port}"
        prefix = unique("samiam")
        outputs = deploy_sam_stack(endpoint, prefix)  # as the local administrator (test/test)
        FakeLambda.headers_seen.clear()
        client(endpoint, "lambda").invoke(FunctionName=outputs["WorkerName"], Payload=b"{}")
        environment = json.loads(FakeLambda.headers_seen[-1]["X-Cascade-Environment"])
        role = boto3.session.Session(
            aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=environment["AWS_SESSION_TOKEN"],
            region_name=REGION,
        )
        sqs = role.client("sqs", endpoint_url=endpoint)
        sqs.send_message(QueueUrl=outputs["QueueUrl"], MessageBody="x", MessageGroupId="g", MessageDeduplicationId="1")
        with pytest.raises(ClientError) as denied:
            sqs.receive_message(QueueUrl=outputs["QueueUrl"])
        assert "is not authorized to perform: sqs:ReceiveMessage" in str(denied.value)
        assert f"assumed-role/{prefix}-WorkerRole" in str(denied.value)
        with pytest.raises(ClientError) as denied:
            role.client("cloudformation", endpoint_url=endpoint).describe_stacks()
        assert "cloudformation:DescribeStacks" in str(denied.value)
        # An unknown key is refused; the service-trusted role cannot be assumed by a user.
        with pytest.raises(ClientError):
            boto3.client("sqs", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="nobody", aws_secret_access_key="x").list_queues()
        resources = client(endpoint, "cloudformation").list_stack_resources(StackName=prefix)["StackResourceSummaries"]
        [worker_role] = [r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"] == "WorkerRole"]
        with pytest.raises(ClientError) as denied:
            client(endpoint, "sts").assume_role(RoleArn=f"arn:aws:iam::123456789012:role/{worker_role}", RoleSessionName="me")
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
        # The deny-non-TLS bucket policy stands without denying the local (loopback) calls.
        s3 = client(endpoint, "s3")
        bucket = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(f"{prefix}-bucket")][0]
        s3.put_object(Bucket=bucket, Key="k", Body=b"v")
        assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    finally:
        stop(proc)


# --------------------------------------------------------------------------- watchdog


def test_launcher_exits_when_parent_process_is_gone(tmp_path):
    parent = subprocess.Popen(["sleep", "60"])
    launcher = None
    try:
        launcher = start_launcher(free_port(), tmp_path / "moto.log", CASCADE_PARENT_PID=str(parent.pid))
        time.sleep(0.6)  # more than one watchdog period with the parent alive
        assert launcher.poll() is None, "launcher exited although its parent is alive"

        parent.kill()  # not reaped yet: the watchdog must treat the zombie as gone
        started = time.monotonic()
        assert launcher.wait(timeout=5) == 0
        assert time.monotonic() - started < 2
        assert "parent process" in (tmp_path / "moto.log").read_text()
    finally:
        parent.kill()
        parent.wait()
        if launcher is not None:
            stop(launcher)


# --------------------------------------------------------------------------- up / down


def run_script(name: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LOCAL_DIR / name)], env=env, cwd="/", capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def parse_exports(stdout: str) -> dict[str, str]:
    exports = {}
    for line in stdout.splitlines():
        assert line.startswith("export "), f"stdout line is not an export: {line!r}"
        key, _, value = line[len("export "):].partition("=")
        exports[key] = value
    return exports


def pid_running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_up_and_down_twice(tmp_path):
    state_dir = tmp_path / "state"
    port = free_port()
    env = {
        **os.environ,
        "CASCADE_LOCAL_PORT": str(port),
        "CASCADE_LOCAL_STATE_DIR": str(state_dir),
        "CASCADE_PARENT_PID": str(os.getpid()),  # a failed test leaves no server behind
    }
    pid_file = state_dir / "moto.pid"
    try:
        first = run_script("up", env)
        assert first.returncode == 0, first.stderr
        exports = parse_exports(first.stdout)
        assert exports == {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
        }
        pid = int(pid_file.read_text())
        assert (state_dir / "moto.log").exists()
        sqs = client(exports["AWS_ENDPOINT_URL"], "sqs")
        sqs.create_queue(QueueName="up-down")
        assert queue_names(sqs, "up-down") == {"up-down"}

        second = run_script("up", env)
        assert second.returncode == 0, second.stderr
        assert parse_exports(second.stdout) == exports
        assert "already running" in second.stderr
        assert int(pid_file.read_text()) == pid
        assert queue_names(sqs, "up-down") == {"up-down"}  # same server, state kept

        stopped = run_script("down", env)
        assert stopped.returncode == 0, stopped.stderr
        assert not pid_file.exists()
        assert not pid_running(pid)
        assert not answers(f"{exports['AWS_ENDPOINT_URL']}/moto-api/")

        again = run_script("down", env)
        assert again.returncode == 0, again.stderr
        assert "not running" in again.stderr
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text()), 9)


def test_cfn_every_update_moves_last_updated_time(endpoint):
    cfn = client(endpoint, "cloudformation")
    body = "Resources:\n  Handle:\n    Type: AWS::CloudFormation::WaitConditionHandle\n"
    cfn.create_stack(StackName="last-updated", TemplateBody=body)
    created = cfn.describe_stacks(StackName="last-updated")["Stacks"][0]
    assert "LastUpdatedTime" not in created  # never updated: CloudFormation shows none
    cfn.update_stack(StackName="last-updated", TemplateBody=body + "  Other:\n    Type: AWS::CloudFormation::WaitConditionHandle\n")
    first = cfn.describe_stacks(StackName="last-updated")["Stacks"][0]["LastUpdatedTime"]
    assert first >= created["CreationTime"]
    time.sleep(0.01)
    change_set = cfn.create_change_set(
        StackName="last-updated", ChangeSetName="again", TemplateBody=body, ChangeSetType="UPDATE"
    )
    cfn.execute_change_set(ChangeSetName=change_set["Id"])
    second = cfn.describe_stacks(StackName="last-updated")["Stacks"][0]["LastUpdatedTime"]
    assert second > first
    time.sleep(0.01)
    failing = body + "    Metadata:\n      Note: MotoSimulateUpdateFailure\n"
    cfn.update_stack(StackName="last-updated", TemplateBody=failing)
    rolled_back = cfn.describe_stacks(StackName="last-updated")["Stacks"][0]
    assert rolled_back["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert rolled_back["LastUpdatedTime"] > second


def test_injected_unavailability_answers_503_for_the_matching_path_only(tmp_path):
    port = free_port()
    proc = start_launcher(
        port,
        tmp_path / "moto.log",
        CASCADE_UNAVAILABLE="s3:PutObject@reports/,secretsmanager:ListSecrets=1",
    )
    try:
        endpoint = f"http://{HOST}:{port}"
        s3 = client(endpoint, "s3")
        secrets = client(endpoint, "secretsmanager")
        s3.create_bucket(Bucket="faults")
        s3.put_object(Bucket="faults", Key="batches/a.json", Body=b"{}")
        with pytest.raises(ClientError) as error:
            s3.put_object(Bucket="faults", Key="reports/a.json", Body=b"{}")
        assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert error.value.response["Error"]["Code"] == "ServiceUnavailable"
        assert s3.get_object(Bucket="faults", Key="batches/a.json")["Body"].read() == b"{}"
        with pytest.raises(ClientError) as error:
            secrets.list_secrets()
        assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert secrets.list_secrets()["SecretList"] == []
    finally:
        stop(proc)


def test_fault_rules_with_a_path_parse_and_match():
    rules = launcher_py.parse_throttle_rules("s3:PutObject@reports/=2", "CASCADE_UNAVAILABLE")
    assert rules == {"s3:putobject@reports/": 2}
    assert launcher_py.throttle_rule_for(rules, "s3", "PutObject", "/b/reports/x.json") == "s3:putobject@reports/"
    assert launcher_py.throttle_rule_for(rules, "s3", "PutObject", "/b/batches/x.json") is None
    assert launcher_py.throttle_rule_for(rules, "s3", "GetObject", "/b/reports/x.json") is None
