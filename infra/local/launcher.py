#!/usr/bin/env python3
"""Secret Cascade's local AWS backend: moto_server plus sixteen patches (moto 5.2.5).

Usage (same command line as ``moto_server``; every argument is passed on to it)::

    infra/local/.venv/bin/python infra/local/launcher.py -H 127.0.0.1 -p 4566

Normally started by ``infra/local/up`` or by the pytest fixture in ``tests/``.

What it adds to plain moto (see shared notes "moto.md" for why each is needed):

(a) Lambda Invoke forwarding -- ``patch_lambda_invoke_forwarding``
    Invoke POSTs the payload to
    ``$LAMBDA_FORWARD_URL/2015-03-31/functions/{name}/invocations`` (the Lambda
    Invoke API shape) instead of running Docker. The function does not need to
    exist in moto. A response header ``X-Amz-Function-Error`` is passed back.
(b) Step Functions mock config -- ``patch_sfn_mock_config``
    ``SFN_MOCK_CONFIG=/path/mock.json`` (AWS Step Functions Local "MockConfigFile"
    format, re-read on every StartExecution) and
    ``StartExecution(stateMachineArn="<arn>#<TestCase>")``.
(c) Re-adding a removed resource -- ``patch_cfn_readd_removed_resource``
    An UpdateStack that re-adds a logical id removed by an earlier update
    really creates the resource again.
(d) Simulated update failure -- ``patch_cfn_simulated_update_failure``
    An UpdateStack (or an UPDATE change set execution) whose template text
    contains ``MotoSimulateUpdateFailure`` (env ``CFN_FAIL_MARKER`` overrides
    the marker) ends in UPDATE_ROLLBACK_COMPLETE and changes nothing.
(e) Change set Replacement -- ``patch_cfn_change_set_replacement``
    A change set's Modify changes carry Replacement (True / Conditional /
    False), Scope and Details (RequiresRecreation per changed property), from
    the create-only table ../../crates/cascade-core/data/create_only.json
    (read at start-up); Modify and Remove carry PhysicalResourceId.
(f) ECS deployments -- ``patch_ecs_deployment_rollout``
    A new service is in steady state; UpdateService with forceNewDeployment
    (or a new task definition) makes a new PRIMARY deployment that ends
    COMPLETED at once (ECS_ROLLOUT_DESCRIBES=N: after N DescribeServices),
    or FAILED by the circuit breaker when the service's or task definition's
    tags or container definitions contain ``cascade-test:fail-deployment``.
(g) Change set execution is an update -- ``patch_cfn_execute_change_set_as_update``
    Executing an UPDATE change set does what UpdateStack does (moto only
    applies the resources): outputs recomputed, parameters, role and tags
    taken from the change set, "User Initiated" event. Patch (d) wraps it.
(h) Resource events of an update -- ``patch_cfn_update_resource_events``
    An update records an event pair per resource, as CloudFormation does:
    CREATE_IN_PROGRESS/CREATE_COMPLETE for each added, UPDATE_IN_PROGRESS/
    UPDATE_COMPLETE for each modified, then UPDATE_COMPLETE_CLEANUP_IN_PROGRESS
    and DELETE_IN_PROGRESS/DELETE_COMPLETE for each removed (moto 5.2.5 records
    stack-level events only), so a test can read what an update deleted.
(i) Secrets created by a stack -- ``patch_cfn_secretsmanager_secret``
    ``AWS::SecretsManager::Secret`` in a template creates a real secret
    (SecretString, or a generated one for GenerateSecretString), tagged as
    CloudFormation tags it (``aws:cloudformation:stack-id``, ``-stack-name``,
    ``-logical-id``); ``Ref`` gives its ARN; removing the resource deletes it.
    moto 5.2.5 skips the type, so a stack's own secret did not exist.
(j) SAM transform -- ``patch_cfn_sam_transform``
    A template declaring ``Transform: AWS::Serverless-2016-10-31`` goes through
    the pinned aws-sam-translator (SAM CLI's) on CreateStack, CreateChangeSet and
    UpdateStack; GetTemplate gives the original (Processed on request); a
    TemplateURL on the local endpoint (``sam deploy``'s) is read.
(k) What SAM's output needs -- ``patch_cfn_sam_output_resources``
    Bucket and queue policies, alarms and EventInvokeConfig are created; FIFO
    queues get ``.fifo``; state machines come from DefinitionS3Location with
    their substitutions, in the backend the API reads; schedule rules take no
    event and Lambda targets are invoked; false-Condition resources are not listed.
(l) IAM as AWS checks it -- ``patch_iam_enforcement``
    ``CASCADE_IAM_ENFORCEMENT=1`` enforces IAM from the first request: ``test``/
    ``test`` is an administrator, deployed functions (through (a)) and the state
    machine act with their roles; conditions evaluated, action names as IAM names
    them, errors in each service's protocol.
(m) Injected throttling -- ``patch_injected_throttling``
    ``CASCADE_THROTTLE=secretsmanager:DescribeSecret,cloudformation:*`` answers those
    requests with the service's throttling error (HTTP 400, ``ThrottlingException`` or
    ``Throttling``), as AWS does beyond an account's rate; ``ACTION=N`` throttles only
    the first N matching requests (then they go through), to exercise retries.

(n) LastUpdatedTime -- ``patch_cfn_last_updated_time``
    Every update of a stack (UpdateStack or an executed change set, completed or
    rolled back by (d)) sets the LastUpdatedTime DescribeStacks shows, as CloudFormation
    does; moto 5.2.5 never shows one, so a template cache keyed by it went stale.
(p) aws-sdk GetObject bodies -- ``patch_sfn_aws_sdk_streaming_body``
    An ``arn:aws:states:::aws-sdk:s3:getObject`` task gives its ``Body`` as text,
    as Step Functions does; moto 5.2.5 fails the state on botocore's checksum-
    validating stream (``'StreamingChecksumBody' object has no attribute 'strip'``).
(o) Injected unavailability -- ``patch_injected_throttling`` too
    ``CASCADE_UNAVAILABLE=s3:PutObject@reports/`` answers those requests (``@text``:
    only those whose path contains it) with HTTP 503 ``ServiceUnavailable``, as a
    service that is down does; ``=N`` as for (m).
(q) Long maps finish -- ``patch_sfn_map_worker_iterates``
    A map's worker takes its items one after another in a loop; moto 5.2.5's worker
    recurses once per item, so a map of more than about 990 items with
    MaxConcurrency 1 overflows Python's stack, the worker dies and the execution
    hangs RUNNING for ever.
Also: ASL execution (``execute_state_machine``) is on from the start, MOTO_PORT
is exported (moto's Step Functions engine calls back into this server through
it), and ``CASCADE_PARENT_PID`` arms a watchdog that ends this server when that
process is gone.

The patches use moto internals: moto is pinned in requirements.txt, every
patched function's signature is checked at start-up (the server refuses to
start when moto changed underneath), and tests/test_launcher.py has a test per
patch. Environment variables read:

    LAMBDA_FORWARD_URL      base URL of the Lambda stand-in (unset: moto's own Invoke)
    LAMBDA_FORWARD_TIMEOUT  seconds to wait for it (default 900, Lambda's maximum)
    SFN_MOCK_CONFIG         path of the Step Functions mock config file
    CFN_FAIL_MARKER         marker string for (d) (default MotoSimulateUpdateFailure;
                            empty disables the simulation)
    ECS_FAIL_MARKER         marker string for (f) (default cascade-test:fail-deployment;
                            empty disables the simulation)
    ECS_ROLLOUT_DESCRIBES   DescribeServices answers a new deployment stays IN_PROGRESS (0)
    CASCADE_PARENT_PID      pid whose death ends this server
    CASCADE_IAM_ENFORCEMENT 1: enforce IAM from the first request (see (l))
    CASCADE_THROTTLE        service:Action[=N],... answered as throttled (see (m))
    CASCADE_UNAVAILABLE     service:Action[@path][=N],... answered as unavailable (see (o))
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable
from urllib.parse import quote

DEFAULT_FAIL_MARKER = "MotoSimulateUpdateFailure"
WATCHDOG_INTERVAL_SECONDS = 0.5


# --------------------------------------------------------------------------- helpers


def parse_server_address(argv: list[str]) -> tuple[str, int]:
    """Return (host, port) from a moto_server command line, with moto's defaults.

    Only -H/--host and -p/--port are looked at; moto.server.main parses the
    whole command line again (and rejects anything it does not know).
    """
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=int(os.environ.get("MOTO_PORT", 5000)))
    args, _ = parser.parse_known_args(argv)
    return args.host, args.port


def require_signature(func: Callable[..., Any], expected: list[str]) -> None:
    """Fail loudly at start-up when a moto function we wrap changed its parameters."""
    actual = list(inspect.signature(func).parameters)
    if actual != expected:
        raise SystemExit(
            f"launcher.py: {func.__qualname__} has parameters {actual}, expected {expected}; "
            "moto changed: re-check the patches in infra/local/launcher.py"
        )


def log(message: str) -> None:
    print(f"launcher: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- watchdog


def _process_start_time(pid: int) -> str | None:
    """Start time of `pid` in clock ticks (field 22 of /proc/PID/stat), None if unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def _process_alive(pid: int, start_time: str | None) -> bool:
    """True while `pid` runs: exists, is not a zombie, and is the same process (no pid reuse)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except OSError:
        return True  # no /proc: os.kill is all we can tell
    if state in ("Z", "X"):
        return False  # exited, not yet reaped by its parent
    return start_time is None or _process_start_time(pid) == start_time


def start_parent_watchdog() -> None:
    """End this server (os._exit(0)) soon after the process CASCADE_PARENT_PID is gone.

    A daemon thread checks every 0.5 s. "Gone" means: no such pid, a zombie,
    a different process under the same pid, or -- when the watched process is
    our own parent -- that we were re-parented. So a test run that dies
    (even by SIGKILL) never leaves a server behind. No-op when the variable is unset.
    """
    raw = os.environ.get("CASCADE_PARENT_PID", "").strip()
    if not raw:
        return
    pid = int(raw)
    start_time = _process_start_time(pid)
    watching_our_parent = os.getppid() == pid

    def watch() -> None:
        while True:
            if not _process_alive(pid, start_time) or (watching_our_parent and os.getppid() != pid):
                log(f"parent process {pid} is gone; exiting")
                os._exit(0)
            time.sleep(WATCHDOG_INTERVAL_SECONDS)

    threading.Thread(target=watch, name="cascade-parent-watchdog", daemon=True).start()


# --------------------------------------------------------------------------- moto settings


def configure_moto(port: int) -> None:
    """Export MOTO_PORT and turn on Step Functions ASL execution.

    moto's Step Functions engine calls services back through
    http://localhost:$MOTO_PORT; moto.server only sets MOTO_PORT when it is
    unset, so an inherited value would point it at the wrong server.
    """
    os.environ["MOTO_PORT"] = str(port)
    from moto.core.config import default_user_config

    default_user_config["stepfunctions"] = {"execute_state_machine": True}


# --------------------------------------------------------------------------- roles

_ROLE_SESSIONS: dict[str, Any] = {}


def _role_session(role_arn: str, region: str):
    """Credentials of ``role_arn``, assumed in moto's STS backend (no request, so no
    trust policy check: this plays the AWS service the role trusts), cached per role."""
    if role_arn not in _ROLE_SESSIONS:
        from moto.sts.models import sts_backends

        account_id = role_arn.split(":")[4]
        _ROLE_SESSIONS[role_arn] = sts_backends[account_id]["aws"].assume_role(
            region_name=region,
            role_session_name=role_arn.rsplit("/", 1)[-1][:64],
            role_arn=role_arn,
            policy="",
            duration=43200,
            external_id="",
        )
    return _ROLE_SESSIONS[role_arn]


# --------------------------------------------------------------------------- (a) Lambda


def _split_function_name(name_or_arn: str) -> tuple[str, str | None]:
    """(function name, qualifier) from a name, a partial ARN or a full ARN.

    NAME[:Q] | ACCOUNT:function:NAME[:Q] | arn:aws:lambda:REGION:ACCOUNT:function:NAME[:Q]
    """
    parts = name_or_arn.split(":")
    if parts[0] == "arn" and len(parts) >= 7:
        return parts[6], (parts[7] if len(parts) > 7 else None)
    if len(parts) >= 3 and parts[1] == "function":
        return parts[2], (parts[3] if len(parts) > 3 else None)
    return parts[0], (parts[1] if len(parts) > 1 else None)


# Request headers passed on to the Lambda stand-in, and response headers passed back.
_FORWARDED_REQUEST_HEADERS = ("X-Amz-Invocation-Type", "X-Amz-Log-Type", "X-Amz-Client-Context")
_RETURNED_RESPONSE_HEADERS = ("X-Amz-Function-Error", "X-Amz-Log-Result", "X-Amz-Executed-Version")


def _function_runtime_environment(backend: Any, name: str) -> dict[str, str] | None:
    """What Lambda gives a function's process, for a function that exists in moto:
    its Environment variables, ``_HANDLER``, the region, and credentials of the
    function's execution role (assumed in moto's STS, as Lambda assumes it), plus
    ``AWS_ENDPOINT_URL`` pointing at this server. None when moto has no such function."""
    try:
        function = backend.get_function(name)
    except Exception:
        return None
    role = _role_session(function.role, backend.region_name)
    # Lambda's variables are strings (a Number parameter's value arrives as an int here).
    environment = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (function.environment_vars or {}).items()}
    environment.update(
        {
            "_HANDLER": function.handler or "",
            "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
            "AWS_REGION": backend.region_name,
            "AWS_DEFAULT_REGION": backend.region_name,
            "AWS_ACCESS_KEY_ID": role.access_key_id,
            "AWS_SECRET_ACCESS_KEY": role.secret_access_key,
            "AWS_SESSION_TOKEN": role.session_token,
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '5000')}",
        }
    )
    return environment


def patch_lambda_invoke_forwarding() -> None:
    """(a) Forward Lambda Invoke to $LAMBDA_FORWARD_URL instead of Docker.

    Patches ``LambdaBackend.invoke`` and ``LambdaSimpleBackend.invoke``
    (``(self, function_name, qualifier, body, headers, response_headers)``).
    The payload is POSTed to
    ``$LAMBDA_FORWARD_URL/2015-03-31/functions/{name}/invocations[?Qualifier=Q]``;
    the response body becomes the Invoke Payload. When the function exists in
    moto (deployed from a template), the request carries what Lambda would give
    its process: ``X-Cascade-Handler`` (the function's Handler) and
    ``X-Cascade-Environment`` (JSON: its environment variables and credentials
    of its own execution role). ``X-Amz-Function-Error``
    from the stand-in is passed back, so boto3 sees FunctionError and Step
    Functions Task states fail with the function's errorType. A non-2xx
    answer counts as an ``Unhandled`` function error; an unreachable stand-in
    too (errorType ``ForwardError``). The function need not exist in moto.
    With LAMBDA_FORWARD_URL unset, moto's own Invoke runs unchanged.
    """
    import moto.awslambda.models as lambda_models
    import moto.awslambda_simple.models as lambda_simple_models

    forward_url = os.environ.get("LAMBDA_FORWARD_URL", "").rstrip("/")
    timeout = float(os.environ.get("LAMBDA_FORWARD_TIMEOUT", "900"))
    signature = ["self", "function_name", "qualifier", "body", "headers", "response_headers"]
    originals = {
        cls: cls.invoke
        for cls in (lambda_models.LambdaBackend, lambda_simple_models.LambdaSimpleBackend)
    }
    for original in originals.values():
        require_signature(original, signature)

    def forward(backend: Any, name_or_arn: str, qualifier: str | None, body: Any, headers: Any, response_headers: dict) -> bytes:
        name, arn_qualifier = _split_function_name(name_or_arn)
        qualifier = qualifier or arn_qualifier
        url = f"{forward_url}/2015-03-31/functions/{quote(name, safe='')}/invocations"
        if qualifier:
            url += f"?Qualifier={quote(qualifier, safe='')}"
        if isinstance(body, str):
            body = body.encode()
        request_headers = {"Content-Type": "application/json"}
        runtime = _function_runtime_environment(backend, name)
        if runtime is not None:
            request_headers["X-Cascade-Handler"] = runtime["_HANDLER"]
            request_headers["X-Cascade-Environment"] = json.dumps(runtime)
        for header in _FORWARDED_REQUEST_HEADERS:
            value = headers.get(header) if headers else None
            if value:
                request_headers[header] = value
        request = urllib.request.Request(url, data=body or b"{}", headers=request_headers, method="POST")
        reply_headers: Any = {}
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                payload = response.read()
                reply_headers = response.headers
            function_error = reply_headers.get("X-Amz-Function-Error")
        except urllib.error.HTTPError as e:  # non-2xx from the stand-in
            reply_headers = e.headers
            payload = e.read() or json.dumps({"errorType": "HTTPError", "errorMessage": str(e)}).encode()
            function_error = reply_headers.get("X-Amz-Function-Error") or "Unhandled"
        except OSError as e:  # stand-in unreachable or timed out
            payload = json.dumps({"errorType": "ForwardError", "errorMessage": f"{url}: {e}"}).encode()
            function_error = "Unhandled"
        for header in _RETURNED_RESPONSE_HEADERS:
            value = function_error if header == "X-Amz-Function-Error" else reply_headers.get(header)
            if value:
                response_headers[header.lower()] = value
        response_headers["Content-Length"] = str(len(payload))
        return payload

    def make_invoke(original: Callable[..., Any]) -> Callable[..., Any]:
        def invoke(self, function_name, qualifier, body, headers, response_headers):
            if not forward_url:
                return original(self, function_name, qualifier, body, headers, response_headers)
            return forward(self, function_name, qualifier, body, headers, response_headers)

        invoke.__doc__ = patch_lambda_invoke_forwarding.__doc__
        return invoke

    for cls, original in originals.items():
        cls.invoke = make_invoke(original)


# --------------------------------------------------------------------------- (b) Step Functions


def load_sfn_mock_test_case(state_machine_name: str, test_case_name: str):
    """Build moto's MockTestCase for one test case from the $SFN_MOCK_CONFIG file.

    File format (AWS Step Functions Local MockConfigFile)::

        {"StateMachines": {"<sm name>": {"TestCases": {"<case>": {"<state>": "<response>"}}}},
         "MockedResponses": {"<response>": {"0": {"Return": {...}}, "1-2": {"Throw":
                              {"Error": "...", "Cause": "..."}}}}}

    The keys of a response are retry counts (or ranges). Lambda mocks return
    the Invoke response shape ``{"StatusCode": 200, "Payload": ...}``.
    Returns None when the variable is unset or the file does not define this
    state machine / test case. The file is read on every call.
    """
    from moto.stepfunctions.parser.mocking import mock_config as mc

    path = os.environ.get("SFN_MOCK_CONFIG")
    if not path:
        return None
    with open(path) as f:
        config = json.load(f)
    test_case = config.get("StateMachines", {}).get(state_machine_name, {}).get("TestCases", {}).get(test_case_name)
    if test_case is None:
        return None
    all_responses = config.get("MockedResponses", {})
    per_state = []
    for state_name, response_name in test_case.items():
        ranges = all_responses.get(response_name)
        if not ranges:
            raise ValueError(f"mocked response '{response_name}' (state '{state_name}') is not defined in {path}")
        responses = []
        for range_text, response in ranges.items():
            start, end = mc._parse_mocked_response_range(range_text)
            if "Return" in response:
                responses.append(mc.MockedResponseReturn(start, end, payload=response["Return"]))
            elif "Throw" in response:
                throw = response["Throw"]
                responses.append(mc.MockedResponseThrow(start, end, error=throw.get("Error"), cause=throw.get("Cause")))
            else:
                raise ValueError(f"mocked response '{response_name}' range '{range_text}' has neither Return nor Throw")
        per_state.append(mc.StateMockedResponses(state_name, response_name, responses))
    return mc.MockTestCase(state_machine_name, test_case_name, per_state)


def patch_sfn_mock_config() -> None:
    """(b) Step Functions Local-style mocked service integrations.

    ``StartExecution(stateMachineArn="<arn>#<TestCase>")`` runs the execution
    with the mocked responses of that test case from $SFN_MOCK_CONFIG (see
    ``load_sfn_mock_test_case``); states not named in the test case run for
    real. moto ships LocalStack's mocking engine, but its loader is a stub
    that returns None and the moto backend never hands a test case to the
    execution worker. This patches:

    * ``mock_config.load_mock_test_case_for`` -> ``load_sfn_mock_test_case``;
    * ``StepFunctionsParserBackend.start_execution``: strips ``#TestCase``,
      loads the test case (unknown test case or bad file -> InvalidName);
    * ``Execution._get_start_execution_worker``: hands the test case to the
      worker. StartExecution builds and starts the worker synchronously in
      the request thread, so a thread-local carries the test case across.
    """
    from moto.stepfunctions.exceptions import InvalidName
    from moto.stepfunctions.parser import models as sfn_models
    from moto.stepfunctions.parser.backend import execution as sfn_execution
    from moto.stepfunctions.parser.mocking import mock_config as mc

    backend_cls = sfn_models.StepFunctionsParserBackend
    original_start = backend_cls.start_execution
    original_worker = sfn_execution.Execution._get_start_execution_worker
    require_signature(original_start, ["self", "state_machine_arn", "name", "execution_input", "trace_header"])
    require_signature(original_worker, ["self"])
    require_signature(mc.load_mock_test_case_for, ["state_machine_name", "test_case_name"])

    pending = threading.local()  # .test_case for the StartExecution running in this thread

    def start_execution(self, state_machine_arn, name=None, execution_input=None, trace_header=None):
        arn, _, test_case_name = state_machine_arn.partition("#")
        test_case = None
        if test_case_name:
            state_machine = self.describe_state_machine(arn)
            try:
                test_case = load_sfn_mock_test_case(state_machine.name, test_case_name)
            except (OSError, ValueError, RuntimeError) as e:
                raise InvalidName(f"Invalid mock config ({os.environ.get('SFN_MOCK_CONFIG')}): {e}")
            if test_case is None:
                raise InvalidName(
                    f"Invalid mock test case name '{test_case_name}' for state machine '{state_machine.name}'"
                )
        pending.test_case = test_case
        try:
            return original_start(self, arn, name, execution_input, trace_header)
        finally:
            pending.test_case = None

    def get_start_execution_worker(self):
        worker = original_worker(self)
        test_case = getattr(pending, "test_case", None)
        if test_case is not None:
            worker._mock_test_case = test_case
        return worker

    mc.load_mock_test_case_for = load_sfn_mock_test_case
    backend_cls.start_execution = start_execution
    sfn_execution.Execution._get_start_execution_worker = get_start_execution_worker


# --------------------------------------------------------------------------- (c) CloudFormation re-add


def patch_cfn_readd_removed_resource() -> None:
    """(c) Make re-adding a removed resource (same logical id) recreate it.

    moto's ``ResourceMap.update`` deletes removed resources from their
    service backends but keeps them in ``_parsed_resources``; re-adding the
    logical id later is then a silent no-op (UPDATE_COMPLETE, nothing
    created) and DeleteStack fails on the stale entry. After the update,
    pop the removed logical ids. Change set execution goes through the same
    method, so it is covered too.
    """
    from moto.cloudformation.parsing import ResourceMap

    original_update = ResourceMap.update
    require_signature(original_update, ["self", "template", "parameters"])

    def update(self, template, parameters=None):
        removed = self.build_resource_diff(template, parameters)["Remove"]
        original_update(self, template, parameters)
        for logical_id in removed:
            self._parsed_resources.pop(logical_id, None)

    ResourceMap.update = update


# --------------------------------------------------------------------------- (d) CloudFormation failure


def _marked_resources(resources: dict[str, Any], marker: str) -> list[str]:
    """Logical ids of the resources whose definition contains `marker`."""
    return [lid for lid, body in resources.items() if marker in json.dumps(body, default=str)]


def _record_simulated_rollback(stack: Any, template: str, marker: str) -> None:
    """Record a failed-and-rolled-back update on `stack` without changing anything else.

    Events (oldest first): stack UPDATE_IN_PROGRESS ("User Initiated"),
    UPDATE_FAILED for each resource whose definition has the marker, stack
    UPDATE_ROLLBACK_IN_PROGRESS (reason), UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS,
    UPDATE_ROLLBACK_COMPLETE. Stack status becomes UPDATE_ROLLBACK_COMPLETE and
    StackStatusReason the reason. Template, parameters, tags and resources stay;
    LastUpdatedTime moves, as it does in CloudFormation (see (n)).
    """
    from moto.cloudformation.models import Event
    from moto.core.utils import utcnow

    stack.last_updated_time = utcnow()

    try:
        new_resources = stack.parse_template(template).get("Resources") or {}
    except Exception:  # unparsable template: report the stack-level failure only
        new_resources = {}
    if not isinstance(new_resources, dict):
        new_resources = {}
    failed = _marked_resources(new_resources, marker)
    if failed:
        reason = f"The following resource(s) failed to update: [{', '.join(failed)}]. "
    else:
        reason = ""
    reason += f"Simulated update failure: the template contains {marker}."

    stack._add_stack_event("UPDATE_IN_PROGRESS", resource_status_reason="User Initiated")
    for logical_id in failed:
        current = stack.resource_map._parsed_resources.get(logical_id)
        stack.events.append(
            Event(
                stack_id=stack.stack_id,
                stack_name=stack.name,
                logical_resource_id=logical_id,
                physical_resource_id=getattr(current, "physical_resource_id", None) or "",
                resource_type=new_resources[logical_id].get("Type", ""),
                resource_status="UPDATE_FAILED",
                resource_status_reason=f"Simulated failure: {marker} found in the definition of {logical_id}",
                resource_properties=None,
            )
        )
    stack._add_stack_event("UPDATE_ROLLBACK_IN_PROGRESS", resource_status_reason=reason)
    stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
    stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
    stack.status = "UPDATE_ROLLBACK_COMPLETE"
    stack.stack_status_reason = reason  # serialized as DescribeStacks StackStatusReason
    log(f"simulated update failure of stack {stack.name}: {reason}")


def _find_change_set(backend: Any, change_set_name: str):
    """The change set moto's execute_change_set would pick (by ARN, else last by name)."""
    if change_set_name in backend.change_sets:
        return backend.change_sets[change_set_name]
    found = None
    for change_set in backend.change_sets.values():
        if change_set.change_set_name == change_set_name:
            found = change_set
    return found


def patch_cfn_execute_change_set_as_update() -> None:
    """(g) Make executing an UPDATE change set update the stack as UpdateStack does.

    moto 5.2.5's ``execute_change_set`` applies the change set's resources and
    template only: the stack keeps its old Outputs (a removed resource's output
    stays), Parameters, role and tags. In AWS, executing a change set is the
    update. For UPDATE change sets this calls ``Stack.update`` with the change
    set's template, parameters, role and tags (as UpdateStack does) and marks
    the change set EXECUTE_COMPLETE. A CREATE change set (how ``sam deploy``
    creates a stack) is applied by moto, which leaves the new stack without
    Outputs and exports: they are computed here, as CreateStack does.
    """
    from moto.cloudformation.models import CloudFormationBackend

    original_execute = CloudFormationBackend.execute_change_set
    require_signature(original_execute, ["self", "change_set_name", "stack_name"])

    def execute_change_set(self, change_set_name, stack_name=None):
        change_set = _find_change_set(self, change_set_name)
        if change_set is not None and change_set.change_set_type == "CREATE":
            result = original_execute(self, change_set_name, stack_name)
            stack = self.stacks[change_set.stack_id]
            stack._parse_template()
            stack.output_map = stack._create_output_map()
            stack.description = stack.template_dict.get("Description")
            self._validate_export_uniqueness(stack)
            for export in stack.exports:
                self.exports[export.name] = export
            return result
        if change_set is None or change_set.change_set_type != "UPDATE":
            return original_execute(self, change_set_name, stack_name)
        stack = self.stacks[change_set.stack_id]
        stack.update(
            change_set.template,
            role_arn=change_set.role_arn,
            parameters=change_set.parameters,
            tags=change_set.tags or None,
        )
        change_set.execution_status = "EXECUTE_COMPLETE"
        return None

    CloudFormationBackend.execute_change_set = execute_change_set


def patch_cfn_simulated_update_failure() -> None:
    """(d) Simulate a failed, rolled-back stack update.

    moto never produces UPDATE_ROLLBACK_*: a bad template makes the API call
    itself fail and leaves the stack half-updated. Instead, an update whose
    template text contains the marker (``MotoSimulateUpdateFailure``, or env
    CFN_FAIL_MARKER; put it e.g. in a resource's Metadata, which real
    CloudFormation ignores) behaves like a real failed update: the API call
    succeeds, the stack ends UPDATE_ROLLBACK_COMPLETE with a StackStatusReason
    and the events of ``_record_simulated_rollback``, and nothing changes.
    The next update works normally.

    Patched: ``Stack.update`` (UpdateStack) and
    ``CloudFormationBackend.execute_change_set`` for UPDATE change sets (the
    change set's ExecutionStatus becomes EXECUTE_FAILED). A successful update
    clears the StackStatusReason left by a simulated failure.
    """
    from moto.cloudformation.models import CloudFormationBackend, Stack

    marker = os.environ.get("CFN_FAIL_MARKER", DEFAULT_FAIL_MARKER)
    original_update = Stack.update
    original_execute = CloudFormationBackend.execute_change_set
    require_signature(original_update, ["self", "template", "role_arn", "parameters", "tags"])
    require_signature(original_execute, ["self", "change_set_name", "stack_name"])

    def has_marker(template: Any) -> bool:
        return bool(marker) and isinstance(template, str) and marker in template

    def update(self, template, role_arn=None, parameters=None, tags=None):
        if has_marker(template):
            _record_simulated_rollback(self, template, marker)
            return None
        result = original_update(self, template, role_arn=role_arn, parameters=parameters, tags=tags)
        self.stack_status_reason = None
        return result

    def execute_change_set(self, change_set_name, stack_name=None):
        change_set = _find_change_set(self, change_set_name)
        if change_set is not None and change_set.change_set_type == "UPDATE":
            stack = self.stacks[change_set.stack_id]
            if has_marker(change_set.template):
                _record_simulated_rollback(stack, change_set.template, marker)
                change_set.execution_status = "EXECUTE_FAILED"
                return None
            result = original_execute(self, change_set_name, stack_name)
            stack.stack_status_reason = None
            return result
        return original_execute(self, change_set_name, stack_name)

    Stack.update = update
    CloudFormationBackend.execute_change_set = execute_change_set


# --------------------------------------------------------------------------- (e) change set Replacement

# crates/cascade-core/data/create_only.json, generated by infra/tools/gen-create-only from the
# pinned cfn-lint's resource provider schemas; the planner reads the same table.
CREATE_ONLY_TABLE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "crates", "cascade-core", "data", "create_only.json"
)
_MISSING = object()
# Resource attributes a change set's Scope names, in AWS's order (Tags: stack tags, not modelled).
_SCOPES = ("Properties", "Metadata", "CreationPolicy", "UpdatePolicy", "DeletionPolicy", "UpdateReplacePolicy")


def load_create_only_table(path: str = CREATE_ONLY_TABLE) -> dict[str, dict[str, list[list[str]]]]:
    """{resource type: {"Always": [path, ...], "Conditionally": [...]}}, paths as lists of steps."""
    try:
        with open(path) as f:
            table = json.load(f)
        sections = {"Always": table["create_only"], "Conditionally": table["conditional"]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SystemExit(f"launcher.py: cannot read the create-only table {path}: {e}")
    by_type: dict[str, dict[str, list[list[str]]]] = {}
    for recreation, types in sections.items():
        for resource_type, paths in types.items():
            by_type.setdefault(resource_type, {"Always": [], "Conditionally": []})[recreation] = [
                p.split("/") for p in paths
            ]
    return by_type


def _is_intrinsic(node: dict) -> bool:
    """A template node `{"Ref": ...}` or `{"Fn::X": ...}`."""
    return len(node) == 1 and (next(iter(node)) == "Ref" or next(iter(node)).startswith("Fn::"))


def _values_at(node: Any, steps: list[str], path: tuple = ()) -> list[tuple[tuple, Any]]:
    """Every (concrete path, value) at `steps` below `node`; `*` is each array item.

    Where the template cannot be descended (an intrinsic function, a scalar)
    that node stands for everything below it, so a change there counts.
    """
    if not steps:
        return [(path, node)]
    head, rest = steps[0], steps[1:]
    if head == "*" and isinstance(node, list):
        return [found for i, item in enumerate(node) for found in _values_at(item, rest, (*path, i))]
    if isinstance(node, dict) and not _is_intrinsic(node):
        return _values_at(node[head], rest, (*path, head)) if head in node else []
    return [(path, node)]


def property_recreation(create_only: dict[str, list[list[str]]], name: str, old: Any, new: Any) -> str:
    """RequiresRecreation of a change of top-level property `name` from `old` to `new`
    (_MISSING when absent): Always, Conditionally or Never."""
    wrapped_old = {} if old is _MISSING else {name: old}
    wrapped_new = {} if new is _MISSING else {name: new}
    for recreation in ("Always", "Conditionally"):
        for steps in create_only.get(recreation, []):
            if steps[0] == name and dict(_values_at(wrapped_old, steps)) != dict(_values_at(wrapped_new, steps)):
                return recreation
    return "Never"


def describe_modification(table: dict, old: dict, new: dict) -> tuple[str, list[str], list[dict]]:
    """(Replacement, Scope, Details) of a Modify change from resource `old` to `new`
    (template definitions), as CloudFormation's DescribeChangeSet reports them."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return "Conditional", [], []  # not a resource definition: cannot be told
    if old.get("Type") != new.get("Type"):
        return "True", ["Properties"], []
    create_only = table.get(new.get("Type"), {})
    scope = [a for a in _SCOPES if old.get(a, _MISSING) != new.get(a, _MISSING)]
    details = []
    old_props, new_props = old.get("Properties", {}), new.get("Properties", {})
    if not isinstance(old_props, dict) or not isinstance(new_props, dict):
        changed: list[tuple[str, Any, Any]] = []
        unknowable = old_props != new_props  # e.g. Properties: !If [...]: cannot be told apart
    else:
        names = sorted(set(old_props) | set(new_props))
        changed = [
            (n, old_props.get(n, _MISSING), new_props.get(n, _MISSING))
            for n in names
            if old_props.get(n, _MISSING) != new_props.get(n, _MISSING)
        ]
        unknowable = False
    for name, before, after in changed:
        details.append(
            {
                "Target": {
                    "Attribute": "Properties",
                    "Name": name,
                    "RequiresRecreation": property_recreation(create_only, name, before, after),
                },
                "Evaluation": "Static",
                "ChangeSource": "DirectModification",
            }
        )
    for attribute in scope:
        if attribute != "Properties":
            details.append(
                {
                    "Target": {"Attribute": attribute, "RequiresRecreation": "Never"},
                    "Evaluation": "Static",
                    "ChangeSource": "DirectModification",
                }
            )
    recreations = {d["Target"]["RequiresRecreation"] for d in details}
    if "Always" in recreations:
        replacement = "True"
    elif "Conditionally" in recreations or unknowable:
        replacement = "Conditional"
    else:
        replacement = "False"
    return replacement, scope, details


def patch_cfn_change_set_replacement() -> None:
    """(e) Fill a change set's ResourceChange Replacement, Scope, Details, PhysicalResourceId.

    moto 5.2.5 natively: ``ChangeSet.diff`` lists Add / Modify / Remove by
    comparing the old and new template's resource definitions (raw, before
    intrinsic functions are resolved; a change set whose only change is a
    parameter value shows no Modify), and each ResourceChange carries only
    Action, LogicalResourceId and ResourceType: no Replacement, Scope, Details
    or PhysicalResourceId. moto's serializer does write those fields when the
    Change object has them, so this wraps ``ChangeSet.diff`` and, for each
    Modify, compares the resource's old and new definition: every changed
    top-level property is a Details entry (Target Attribute Properties, Name,
    RequiresRecreation Always / Conditionally / Never: Always when a
    create-only property at or below it changed, per
    crates/cascade-core/data/create_only.json, read at start-up);
    Replacement is True when one is Always, else Conditional when one is
    Conditionally, else False; Scope lists the changed attributes
    (Properties, Metadata, ...). A changed resource Type is a replacement.
    Modify and Remove get the resource's PhysicalResourceId.
    """
    from moto.cloudformation.models import ChangeSet

    table = load_create_only_table()
    original_diff = ChangeSet.diff
    require_signature(original_diff, ["self"])

    def diff(self):
        changes = original_diff(self)
        resource_map = self.stack.resource_map
        old_resources = getattr(resource_map, "_resource_json_map", {}) or {}
        new_resources = (self.template_dict or {}).get("Resources") or {}
        for change in changes:
            logical_id = change.logical_resource_id
            if change.action in ("Modify", "Remove"):
                resource = resource_map._parsed_resources.get(logical_id)
                try:
                    physical_id = getattr(resource, "physical_resource_id", None)
                except Exception:  # some moto models compute it and may fail
                    physical_id = None
                if isinstance(physical_id, str) and physical_id:
                    change.physical_resource_id = physical_id
            if change.action == "Modify":
                old, new = old_resources.get(logical_id, {}), new_resources.get(logical_id, {})
                change.replacement, change.scope, change.details = describe_modification(table, old, new)
        return changes

    ChangeSet.diff = diff


# --------------------------------------------------------------------------- (f) ECS deployments

DEFAULT_ECS_FAIL_MARKER = "cascade-test:fail-deployment"
CIRCUIT_BREAKER_REASON = "ECS deployment circuit breaker: tasks failed to start."


def _task_definition_arn(backend: Any, name_or_arn: str | None) -> str | None:
    """The full ARN of a task definition given by family, family:revision or ARN."""
    if not name_or_arn:
        return None
    try:
        return backend.describe_task_definition(name_or_arn).arn
    except Exception:  # unknown: leave it as given
        return name_or_arn


def _deployment_fails(backend: Any, service: Any, marker: str) -> bool:
    """Whether the service's tags, or its task definition's tags or container
    definitions (e.g. an environment variable), contain `marker`."""
    if not marker:
        return False
    looked_at: list[Any] = [service.tags]
    try:
        task_definition = backend.describe_task_definition(service.task_definition)
        looked_at += [task_definition.tags, task_definition.container_definitions]
    except Exception:  # no task definition: only the service's tags
        pass
    return marker in json.dumps(looked_at, default=str)


def _settle_rollout(service: Any) -> None:
    """Apply the outcome of the service's pending rollout (see patch (f))."""
    rollout = service.__dict__.pop("_cascade_rollout", None)
    if rollout is None:
        return
    service.deployments = rollout["deployments"]
    service.running_count, service.pending_count = rollout["counts"]
    service.events.insert(0, rollout["event"])


def _start_deployment(backend: Any, service: Any, previous: list[dict], marker: str, describes: int) -> None:
    """Give `service` a new PRIMARY deployment that completes, or fails when `marker` is
    found, once `describes` DescribeServices answers have shown it IN_PROGRESS."""
    from moto.core.utils import utcnow
    from moto.moto_api._internal import mock_random

    now = utcnow()
    deployment_id = f"ecs-svc/{mock_random.randint(0, 32**12)}"
    desired = service.desired_count or 0
    kept = ("launchType", "platformVersion", "platformFamily", "networkConfiguration")
    new = {
        **{k: v for k, v in (previous[0] if previous else {}).items() if k in kept},
        "id": deployment_id,
        "status": "PRIMARY",
        "taskDefinition": service.task_definition,
        "desiredCount": desired,
        "createdAt": now,
        "updatedAt": now,
    }
    old_primary = [{**d, "status": "ACTIVE", "updatedAt": now} for d in previous if d.get("status") == "PRIMARY"]
    if _deployment_fails(backend, service, marker):
        final = {**new, "runningCount": 0, "pendingCount": 0, "failedTasks": max(desired, 1),
                 "rolloutState": "FAILED", "rolloutStateReason": CIRCUIT_BREAKER_REASON}
        deployments = [final, *old_primary]  # the circuit breaker leaves the old tasks serving
        counts = (service.running_count, 0)
        message = f"(service {service.name}) deployment {deployment_id} deployment failed: tasks failed to start."
        log(f"simulated failed deployment {deployment_id} of ECS service {service.name}")
    else:
        final = {**new, "runningCount": desired, "pendingCount": 0, "failedTasks": 0,
                 "rolloutState": "COMPLETED", "rolloutStateReason": f"ECS deployment {deployment_id} completed."}
        deployments = [final]
        counts = (desired, 0)
        message = f"(service {service.name}) has reached a steady state."
    service._cascade_rollout = {
        "deployments": deployments,
        "counts": counts,
        "event": {"id": str(mock_random.uuid4()), "createdAt": now, "message": message},
        "describes_left": describes,
    }
    if describes == 0:
        _settle_rollout(service)
    else:
        in_progress = {**new, "runningCount": 0, "pendingCount": desired, "failedTasks": 0,
                       "rolloutState": "IN_PROGRESS", "rolloutStateReason": f"ECS deployment {deployment_id} in progress."}
        service.deployments = [in_progress, *old_primary]


def patch_ecs_deployment_rollout() -> None:
    """(f) A new ECS deployment completes (or fails, on request) like a real one.

    moto 5.2.5 natively (probed): a service has one deployment, PRIMARY, whose
    rolloutState is IN_PROGRESS for ever (COMPLETED only when
    MOTO_ECS_SERVICE_RUNNING >= desiredCount at creation), runningCount 0.
    UpdateService(forceNewDeployment=True) only gives that same deployment a
    new id and createdAt: still IN_PROGRESS, and its rolloutStateReason still
    names the old id. A new task definition gives no new deployment at all,
    and a stack update stores the task definition's family name instead of
    its ARN. Services created by CloudFormation get no tags.

    Patched: ``EC2ContainerServiceBackend.create_service``: a new service's
    first deployment is COMPLETED with running = desired, as a service in
    steady state (unless MOTO_ECS_SERVICE_RUNNING is set: moto's own knob).
    ``EC2ContainerServiceBackend.update_service``: on
    forceNewDeployment or a changed task definition (compared by ARN) the
    service gets a new deployment (new id, PRIMARY, the task definition's
    ARN). It completes at once: rolloutState COMPLETED ("ECS deployment <id>
    completed."), running = desired, the old deployment gone, event "(service
    <name>) has reached a steady state.". Failure simulation: when the
    service's tags, or its task definition's tags or container definitions
    (e.g. an environment variable's value), contain
    ``cascade-test:fail-deployment`` (env ECS_FAIL_MARKER overrides; empty
    disables), the new deployment ends rolloutState FAILED, rolloutStateReason
    "ECS deployment circuit breaker: tasks failed to start.", failedTasks =
    desired, and the previous PRIMARY stays as ACTIVE (circuit breaker
    without rollback). ECS_ROLLOUT_DESCRIBES=N (default 0) keeps the new
    deployment IN_PROGRESS (old one ACTIVE) for the next N DescribeServices
    answers, so wait loops see IN_PROGRESS first (``describe_services`` is
    wrapped for that).
    """
    from moto.ecs.models import EC2ContainerServiceBackend

    marker = os.environ.get("ECS_FAIL_MARKER", DEFAULT_ECS_FAIL_MARKER)
    try:
        describes = max(int(os.environ.get("ECS_ROLLOUT_DESCRIBES") or 0), 0)
    except ValueError:
        raise SystemExit(f"launcher.py: ECS_ROLLOUT_DESCRIBES must be a number, not {os.environ['ECS_ROLLOUT_DESCRIBES']!r}")
    original_create = EC2ContainerServiceBackend.create_service
    original_update = EC2ContainerServiceBackend.update_service
    original_describe = EC2ContainerServiceBackend.describe_services
    require_signature(original_create, [
        "self", "cluster_str", "service_name", "desired_count", "task_definition_str", "load_balancers",
        "scheduling_strategy", "tags", "deployment_controller", "launch_type", "service_registries",
        "platform_version", "propagate_tags", "network_configuration", "role_arn",
    ])
    require_signature(original_update, ["self", "service_properties"])
    require_signature(original_describe, ["self", "cluster_str", "service_names_or_arns"])

    def create_service(self, *args, **kwargs):
        service = original_create(self, *args, **kwargs)
        if service.deployments and "MOTO_ECS_SERVICE_RUNNING" not in os.environ:
            deployment = service.deployments[0]
            deployment.update(runningCount=service.desired_count, pendingCount=0, rolloutState="COMPLETED",
                              rolloutStateReason=f"ECS deployment {deployment['id']} completed.")
            service.running_count, service.pending_count = service.desired_count, 0
        return service

    def update_service(self, service_properties):
        force = bool(service_properties.get("force_new_deployment"))
        try:
            service_name = str(service_properties.get("service", "")).split("/")[-1]
            before = self._get_service(service_properties.get("cluster", "default"), service_name)
            _settle_rollout(before)
            previous = [dict(d) for d in before.deployments]
            previous_arn = _task_definition_arn(self, before.task_definition)
        except Exception:  # unknown cluster or service: moto's own error follows
            previous, previous_arn = [], None
        service = original_update(self, service_properties)
        service.task_definition = _task_definition_arn(self, service.task_definition)
        new_task_definition = service.task_definition != previous_arn
        if service.deployment_controller.get("type") == "ECS" and (force or new_task_definition):
            _start_deployment(self, service, previous, marker, describes)
        return service

    def describe_services(self, cluster_str, service_names_or_arns):
        services, failures = original_describe(self, cluster_str, service_names_or_arns)
        for service in services:
            rollout = service.__dict__.get("_cascade_rollout")
            if rollout is not None:
                if rollout["describes_left"] > 0:
                    rollout["describes_left"] -= 1
                else:
                    _settle_rollout(service)
        return services, failures

    EC2ContainerServiceBackend.create_service = create_service
    EC2ContainerServiceBackend.update_service = update_service
    EC2ContainerServiceBackend.describe_services = describe_services


# --------------------------------------------------------------------------- (h) resource events


def _resource_event(stack: Any, logical_id: str, physical_id: str, resource_type: str, status: str):
    from moto.cloudformation.models import Event

    return Event(
        stack_id=stack.stack_id,
        stack_name=stack.name,
        logical_resource_id=logical_id,
        physical_resource_id=physical_id or "",
        resource_type=resource_type,
        resource_status=status,
        resource_status_reason=None,
        resource_properties=None,
    )


def patch_cfn_update_resource_events() -> None:
    """(h) Record the per-resource events of a stack update.

    moto 5.2.5's ``Stack.update`` records only the stack's UPDATE_IN_PROGRESS
    and UPDATE_COMPLETE. In AWS every resource the update adds, modifies or
    removes has its own events, in this order: creates and updates, then the
    stack's UPDATE_COMPLETE_CLEANUP_IN_PROGRESS, then the deletions, then the
    stack's UPDATE_COMPLETE. This wraps ``Stack.update`` (UpdateStack, and
    change set execution through (g)) and inserts those events before the
    stack's UPDATE_COMPLETE, from moto's own diff of the old and new resources.
    Applied before (d), so a simulated failure records (d)'s events only.
    """
    from moto.cloudformation.models import Stack

    original_update = Stack.update
    require_signature(original_update, ["self", "template", "role_arn", "parameters", "tags"])

    def update(self, template, role_arn=None, parameters=None, tags=None):
        resource_map = self.resource_map
        old_types = {lid: (body or {}).get("Type", "") for lid, body in resource_map._resource_json_map.items()}
        old_physical = {
            lid: getattr(resource, "physical_resource_id", None) or ""
            for lid, resource in resource_map._parsed_resources.items()
            if lid in old_types
        }
        try:
            new_template = self.parse_template(template)
            diff = resource_map.build_resource_diff(new_template, parameters)
            new_types = {lid: (body or {}).get("Type", "") for lid, body in (new_template.get("Resources") or {}).items()}
        except Exception:  # moto's own update reports what is wrong with the template
            diff, new_types = {"Add": [], "Modify": [], "Remove": []}, {}
        result = original_update(self, template, role_arn=role_arn, parameters=parameters, tags=tags)
        events = []

        def physical(lid: str) -> str:
            resource = self.resource_map._parsed_resources.get(lid)
            return getattr(resource, "physical_resource_id", None) or ""

        for lid in diff["Add"]:
            for status in ("CREATE_IN_PROGRESS", "CREATE_COMPLETE"):
                events.append(_resource_event(self, lid, physical(lid), new_types.get(lid, ""), status))
        for lid in diff["Modify"]:
            for status in ("UPDATE_IN_PROGRESS", "UPDATE_COMPLETE"):
                events.append(_resource_event(self, lid, physical(lid), new_types.get(lid, ""), status))
        if diff["Remove"]:
            cleanup = _resource_event(
                self, self.name, self.stack_id, "AWS::CloudFormation::Stack", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
            )
            events.append(cleanup)
        for lid in diff["Remove"]:
            for status in ("DELETE_IN_PROGRESS", "DELETE_COMPLETE"):
                events.append(_resource_event(self, lid, old_physical.get(lid, ""), old_types.get(lid, ""), status))
        if events and self.events and self.events[-1].resource_status == "UPDATE_COMPLETE":
            complete = self.events.pop()
            self.events.extend(events)
            self.events.append(complete)
        return result

    Stack.update = update


# --------------------------------------------------------------------------- (i) stack's secrets


def patch_cfn_secretsmanager_secret() -> None:
    """(i) Let a template create its own Secrets Manager secret.

    moto 5.2.5 has no CloudFormation model for ``AWS::SecretsManager::Secret``:
    the resource is skipped with a warning and its ``Ref`` is empty. Real
    templates very often create their own secret and resolve it through
    ``{{resolve:secretsmanager:${MySecret}...}}``. This registers a model that
    creates the secret in moto's Secrets Manager backend with the tags
    CloudFormation puts on it (which is how Secret Cascade tells a stack's own
    secret), answers ``Ref`` with the ARN (as AWS does), keeps the secret on
    updates, and deletes it when removed.
    """
    from moto.cloudformation import parsing
    from moto.core.common_models import CloudFormationModel
    from moto.secretsmanager.models import secretsmanager_backends

    def backend(account_id: str, region_name: str):
        return secretsmanager_backends[account_id][region_name]

    class StackSecret(CloudFormationModel):
        # moto's model metaclass files a model under the service its module names.
        __module__ = "moto.secretsmanager.models"

        def __init__(self, arn: str, name: str, account_id: str, region_name: str):
            self.arn = arn
            self.name = name
            self.account_id = account_id
            self.region_name = region_name

        @property
        def physical_resource_id(self) -> str:
            return self.arn

        @staticmethod
        def cloudformation_name_type() -> str:
            return "Name"

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::SecretsManager::Secret"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr == "Id"

        def get_cfn_attribute(self, attribute_name: str) -> str:
            if attribute_name == "Id":
                return self.arn
            from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

            raise UnformattedGetAttTemplateException()

        @classmethod
        def create_from_cloudformation_json(
            cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
        ):
            properties = cloudformation_json.get("Properties") or {}
            value = properties.get("SecretString")
            generate = properties.get("GenerateSecretString")
            if value is None:
                import secrets as random_source

                generated = random_source.token_urlsafe(24)
                if isinstance(generate, dict) and generate.get("SecretStringTemplate") and generate.get("GenerateStringKey"):
                    try:
                        document = json.loads(generate["SecretStringTemplate"])
                    except (TypeError, ValueError):
                        document = {}
                    document[generate["GenerateStringKey"]] = generated
                    value = json.dumps(document)
                else:
                    value = generated
            stack_id = kwargs.get("StackId") or ""
            stack_name = stack_id.split("/")[1] if stack_id.count("/") >= 2 else ""
            tags = [t for t in (properties.get("Tags") or []) if isinstance(t, dict)]
            tags += [
                {"Key": "aws:cloudformation:stack-id", "Value": stack_id},
                {"Key": "aws:cloudformation:stack-name", "Value": stack_name},
                {"Key": "aws:cloudformation:logical-id", "Value": kwargs.get("LogicalId") or ""},
            ]
            created = json.loads(
                backend(account_id, region_name).create_secret(
                    name=resource_name,
                    secret_string=value,
                    secret_binary=None,
                    description=properties.get("Description"),
                    tags=tags,
                    kms_key_id=properties.get("KmsKeyId"),
                    client_request_token=None,
                    replica_regions=[],
                    force_overwrite=False,
                )
            )
            return cls(created["ARN"], created["Name"], account_id, region_name)

        @classmethod
        def update_from_cloudformation_json(
            cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
        ):
            # The same secret, as in AWS when neither Name nor the value generator changes
            # (the only updates a refresh makes touch other resources).
            return original_resource

        @classmethod
        def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
            # resource_name is the physical id (the ARN).
            backend(account_id, region_name).delete_secret(
                secret_id=resource_name, recovery_window_in_days=None, force_delete_without_recovery=True
            )

    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()
    assert StackSecret in parsing.get_model_list()


# --------------------------------------------------------------------------- (j) SAM transform

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"


def _declares_sam_transform(template: dict) -> bool:
    transform = template.get("Transform")
    names = transform if isinstance(transform, list) else [transform]
    return SAM_TRANSFORM in names


class _MotoManagedPolicies:
    """samtranslator's managed policy loader: AWS managed policy names to ARNs, from moto's
    own copy of them (what SAM CLI reads with iam:ListPolicies in AWS)."""

    def load(self) -> dict[str, str]:
        from moto.iam.aws_managed_policies import aws_managed_policies_data

        policies = json.loads(aws_managed_policies_data)
        return {name: f"arn:aws:iam::aws:policy{body.get('Path', '/')}{name}" for name, body in policies.items()}


def sam_transform(template_body: str, parameters: dict[str, Any], region: str, account_id: str) -> str:
    """The template as CloudFormation processes it: a template that declares
    ``Transform: AWS::Serverless-2016-10-31`` goes through the pinned
    aws-sam-translator (the one SAM CLI uses), any other is returned unchanged.
    A template the transform rejects raises moto's ValidationError with the
    transform's message, as CloudFormation's change set fails."""
    from moto.cloudformation.exceptions import ValidationError
    from samtranslator.model.exceptions import InvalidDocumentException
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template
    from samtranslator.yaml_helper import yaml_parse

    try:
        template = yaml_parse(template_body)
    except Exception:  # not ours to judge: moto reports unreadable templates itself
        return template_body
    if not isinstance(template, dict) or not _declares_sam_transform(template):
        return template_body
    values = {str(k): v for k, v in (parameters or {}).items()}
    values.update({"AWS::Region": region, "AWS::AccountId": account_id})
    try:
        # samtranslator.translator.transform.transform, with the stack's region as the
        # session's (the translator reads the region from a boto3 session).
        to_py27_compatible_template(template, values)
        translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
        policies = _MotoManagedPolicies()
        processed = undo_mark_unicode_str_in_template(
            translator.translate(template, parameter_values=values, get_managed_policy_map=policies.load)
        )
    except InvalidDocumentException as e:
        causes = "; ".join(str(cause) for cause in e.causes) or str(e)
        raise ValidationError(message=f"Transform {SAM_TRANSFORM} failed with: {causes}")
    processed_body = json.dumps(processed)
    _ORIGINAL_TEMPLATES[processed_body] = template_body
    return processed_body


# Processed template text -> the template as submitted, for GetTemplate.
_ORIGINAL_TEMPLATES: dict[str, str] = {}


def patch_cfn_sam_transform() -> None:
    """(j) Apply the SAM transform where CloudFormation does.

    moto 5.2.5 ignores ``Transform``: a SAM template's ``AWS::Serverless::*``
    resources are skipped. Patched: ``CloudFormationBackend.create_stack``,
    ``create_change_set`` and ``update_stack`` transform the template first,
    with the call's parameter values, the region and the account, so
    ``sam deploy`` (CreateChangeSet with CAPABILITY_AUTO_EXPAND) creates the
    resources AWS would. A TemplateURL on the local endpoint (what ``sam deploy``
    passes, path style on 127.0.0.1) is read from moto's S3 (moto took "127" for
    the bucket). GetTemplate returns the template as submitted (with
    its Transform), or the processed one with ``TemplateStage=Processed``, as AWS
    does.
    """
    from moto.cloudformation.models import CloudFormationBackend
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.core.responses import ActionResult

    def get_template(self):
        body = self.cloudformation_backend.get_template(self._get_param("StackName"))
        if isinstance(body, str) and self._get_param("TemplateStage") != "Processed":
            body = _ORIGINAL_TEMPLATES.get(body, body)
        return ActionResult({"TemplateBody": body})

    require_signature(CloudFormationResponse.get_template, ["self"])
    CloudFormationResponse.get_template = get_template

    # `sam deploy` uploads the packaged template and passes its path-style URL on the
    # configured endpoint (http://127.0.0.1:PORT/BUCKET/KEY); moto read "127" as the bucket.
    from urllib.parse import urlparse

    from moto.cloudformation import responses as cfn_responses
    from moto.cloudformation import utils as cfn_utils

    from_s3_url = cfn_utils.get_stack_from_s3_url
    require_signature(from_s3_url, ["template_url", "account_id", "partition"])

    def get_stack_from_s3_url(template_url, account_id, partition):
        parts = urlparse(template_url)
        if parts.hostname in ("127.0.0.1", "::1"):
            template_url = parts._replace(netloc=f"localhost:{parts.port or 80}").geturl()
        return from_s3_url(template_url, account_id, partition)

    cfn_utils.get_stack_from_s3_url = get_stack_from_s3_url
    cfn_responses.get_stack_from_s3_url = get_stack_from_s3_url

    originals = {
        "create_stack": CloudFormationBackend.create_stack,
        "create_change_set": CloudFormationBackend.create_change_set,
        "update_stack": CloudFormationBackend.update_stack,
    }
    require_signature(
        originals["create_stack"],
        ["self", "name", "template", "parameters", "notification_arns", "tags", "role_arn",
         "enable_termination_protection", "timeout_in_mins", "stack_policy_body"],
    )
    require_signature(
        originals["create_change_set"],
        ["self", "stack_name", "change_set_name", "template", "parameters", "description",
         "change_set_type", "notification_arns", "tags", "role_arn"],
    )
    require_signature(originals["update_stack"], ["self", "name", "template", "role_arn", "parameters", "tags"])

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        params = list(inspect.signature(original).parameters)

        def transformed(self, *args, **kwargs):
            bound = inspect.signature(original).bind(self, *args, **kwargs)
            template = bound.arguments.get("template")
            if isinstance(template, str):
                bound.arguments["template"] = sam_transform(
                    template, bound.arguments.get("parameters") or {}, self.region_name, self.account_id
                )
            return original(*bound.args, **bound.kwargs)

        transformed.__doc__ = patch_cfn_sam_transform.__doc__
        assert "template" in params
        return transformed

    for name, original in originals.items():
        setattr(CloudFormationBackend, name, wrap(original))


# --------------------------------------------------------------------------- (k) what SAM's output needs


def _new_model(cfn_type: str, create: Callable[..., str], delete: Callable[..., None] | None = None):
    """A CloudFormation model for a type moto 5.2.5 skips: ``create(properties, name,
    account_id, region_name)`` makes the resource and returns its physical id;
    updates create again (the calls are idempotent puts); ``delete(physical_id,
    properties, account_id, region_name)`` removes it."""
    from moto.core.common_models import CloudFormationModel

    class Model(CloudFormationModel):
        __module__ = "moto.cloudformation.models"

        def __init__(self, physical_id: str, properties: dict):
            self.physical_id = physical_id
            self.properties = properties

        @property
        def physical_resource_id(self) -> str:
            return self.physical_id

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @staticmethod
        def cloudformation_type() -> str:
            return cfn_type

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            properties = cloudformation_json.get("Properties") or {}
            return cls(create(properties, resource_name, account_id, region_name), properties)

        @classmethod
        def update_from_cloudformation_json(
            cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
        ):
            properties = cloudformation_json.get("Properties") or {}
            return cls(create(properties, original_resource.physical_id, account_id, region_name), properties)

        @classmethod
        def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
            if delete:
                delete(resource_name, (cloudformation_json or {}).get("Properties") or {}, account_id, region_name)

    Model.__name__ = Model.__qualname__ = cfn_type.replace("::", "")
    return Model


def _invoke_async(account_id: str, region_name: str, arns: list[str], event: Any) -> None:
    """Deliver an event to Lambda functions as EventBridge does: an asynchronous
    (``Event``) invoke of each, through moto's Lambda (and so patch (a))."""
    from moto.awslambda.models import lambda_backends

    body = json.dumps(event, default=str)

    def deliver() -> None:
        for arn in arns:
            try:
                lambda_backends[account_id][region_name].invoke(
                    arn, None, body, {"X-Amz-Invocation-Type": "Event"}, {}
                )
            except Exception as e:  # EventBridge drops it after its retries; so do we
                log(f"event delivery to {arn} failed: {e}")

    threading.Thread(target=deliver, daemon=True).start()


def _policy_text(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def _create_bucket_policy(properties: dict, name: str, account_id: str, region_name: str) -> str:
    from moto.s3.models import s3_backends

    bucket = properties["Bucket"]
    s3_backends[account_id]["aws"].put_bucket_policy(bucket, _policy_text(properties["PolicyDocument"]).encode())
    return bucket


def _delete_bucket_policy(physical_id: str, properties: dict, account_id: str, region_name: str) -> None:
    from moto.s3.models import s3_backends

    s3_backends[account_id]["aws"].delete_bucket_policy(properties.get("Bucket") or physical_id)


def _create_queue_policy(properties: dict, name: str, account_id: str, region_name: str) -> str:
    from moto.sqs.models import sqs_backends

    for url in properties.get("Queues") or []:
        sqs_backends[account_id][region_name].set_queue_attributes(
            url.rstrip("/").rsplit("/", 1)[-1], {"Policy": _policy_text(properties["PolicyDocument"])}
        )
    return name


def _delete_queue_policy(physical_id: str, properties: dict, account_id: str, region_name: str) -> None:
    from moto.sqs.models import sqs_backends

    for url in properties.get("Queues") or []:
        sqs_backends[account_id][region_name].set_queue_attributes(url.rstrip("/").rsplit("/", 1)[-1], {"Policy": ""})


def _create_alarm(properties: dict, name: str, account_id: str, region_name: str) -> str:
    from moto.cloudwatch.models import cloudwatch_backends

    alarm_name = properties.get("AlarmName") or name
    cloudwatch_backends[account_id][region_name].put_metric_alarm(
        name=alarm_name,
        namespace=properties.get("Namespace"),
        metric_name=properties.get("MetricName"),
        comparison_operator=properties.get("ComparisonOperator"),
        evaluation_periods=int(properties.get("EvaluationPeriods") or 1),
        period=int(properties.get("Period") or 60),
        threshold=float(properties.get("Threshold") or 0),
        statistic=properties.get("Statistic"),
        description=properties.get("AlarmDescription"),
        dimensions=[{"Name": d["Name"], "Value": d["Value"]} for d in properties.get("Dimensions") or []],
        alarm_actions=properties.get("AlarmActions") or [],
        ok_actions=properties.get("OKActions") or [],
        insufficient_data_actions=properties.get("InsufficientDataActions") or [],
        datapoints_to_alarm=properties.get("DatapointsToAlarm"),
        treat_missing_data=properties.get("TreatMissingData"),
        actions_enabled=properties.get("ActionsEnabled", True) not in (False, "false"),
        unit=properties.get("Unit"),
    )
    return alarm_name


def _delete_alarm(physical_id: str, properties: dict, account_id: str, region_name: str) -> None:
    from moto.cloudwatch.models import cloudwatch_backends

    cloudwatch_backends[account_id][region_name].delete_alarms([physical_id])


def _create_event_invoke_config(properties: dict, name: str, account_id: str, region_name: str) -> str:
    from moto.awslambda.models import lambda_backends

    config = {
        key: properties[key]
        for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")
        if key in properties
    }
    lambda_backends[account_id][region_name].put_function_event_invoke_config(properties["FunctionName"], config)
    return f"{properties['FunctionName']}:{properties.get('Qualifier', '$LATEST')}"


def _state_machine_definition(properties: dict, account_id: str) -> dict:
    """Properties with DefinitionString made from Definition or DefinitionS3Location
    (read from moto's S3), with DefinitionSubstitutions applied, as CloudFormation does."""
    properties = dict(properties)
    if "DefinitionString" not in properties:
        if "Definition" in properties:
            properties["DefinitionString"] = json.dumps(properties.pop("Definition"))
        elif "DefinitionS3Location" in properties:
            from moto.s3.models import s3_backends

            location = properties.pop("DefinitionS3Location")
            key = s3_backends[account_id]["aws"].get_object(location["Bucket"], location["Key"])
            properties["DefinitionString"] = key.value.decode()
    for name, value in (properties.pop("DefinitionSubstitutions", None) or {}).items():
        properties["DefinitionString"] = properties.get("DefinitionString", "").replace(f"${{{name}}}", str(value))
    return properties


def patch_cfn_sam_output_resources() -> None:
    """(k) Create what the SAM transform's output declares and moto 5.2.5 skips or gets wrong.

    - ``AWS::S3::BucketPolicy``, ``AWS::SQS::QueuePolicy``, ``AWS::CloudWatch::Alarm``
      and ``AWS::Lambda::EventInvokeConfig`` had no CloudFormation model (skipped with a
      warning): each now makes its resource through moto's own backend.
    - A FIFO ``AWS::SQS::Queue`` without ``QueueName`` got a generated name without the
      ``.fifo`` suffix, and SQS refused it; CloudFormation adds the suffix.
    - ``AWS::StepFunctions::StateMachine`` read ``DefinitionString`` only; it now also
      takes ``Definition`` and ``DefinitionS3Location`` (what ``sam package`` uploads),
      applies ``DefinitionSubstitutions``, and creates the state machine in the backend
      the Step Functions API answers from (the ASL-executing one), not beside it.
    """
    from moto.cloudformation import parsing
    from moto.sqs.models import Queue
    from moto.stepfunctions.models import StateMachine

    models = [
        _new_model("AWS::S3::BucketPolicy", _create_bucket_policy, _delete_bucket_policy),
        _new_model("AWS::SQS::QueuePolicy", _create_queue_policy, _delete_queue_policy),
        _new_model("AWS::CloudWatch::Alarm", _create_alarm, _delete_alarm),
        _new_model("AWS::Lambda::EventInvokeConfig", _create_event_invoke_config),
    ]

    create_queue = Queue.create_from_cloudformation_json.__func__
    require_signature(create_queue, ["cls", "resource_name", "cloudformation_json", "account_id", "region_name", "kwargs"])

    def create_fifo_aware(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json.get("Properties") or {}
        fifo = properties.get("FifoQueue") in (True, "true", "True")
        if fifo and "QueueName" not in properties and not str(resource_name).endswith(".fifo"):
            resource_name = f"{str(resource_name)[:75]}.fifo"
        return create_queue(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    Queue.create_from_cloudformation_json = classmethod(create_fifo_aware)

    # moto's model creates the state machine in the classic backend, while the API (with
    # ASL execution on) answers from the parser backend: create where the API looks.
    require_signature(
        StateMachine.update_from_cloudformation_json.__func__,
        ["cls", "original_resource", "new_resource_name", "cloudformation_json", "account_id", "region_name"],
    )

    def machines(account_id: str, region_name: str):
        from moto.stepfunctions.responses import get_backend

        return get_backend(account_id, region_name)

    def create_machine(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        from moto.utilities.tagging_service import TaggingService

        properties = _state_machine_definition(cloudformation_json.get("Properties") or {}, account_id)
        tags = TaggingService.convert_dict_to_tags_input(
            {t["Key"]: t["Value"] for t in properties.get("Tags") or []}
        )
        return machines(account_id, region_name).create_state_machine(
            properties.get("StateMachineName", resource_name),
            properties.get("DefinitionString", ""),
            properties.get("RoleArn", ""),
            tags=[{"key": t["Key"], "value": t["Value"]} for t in tags],
            sm_type=properties.get("StateMachineType"),
        )

    def update_machine(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
        properties = _state_machine_definition(cloudformation_json.get("Properties") or {}, account_id)
        name = properties.get("StateMachineName", original_resource.name)
        if name != original_resource.name:  # a new name replaces the state machine
            created = create_machine(cls, name, cloudformation_json, account_id, region_name)
            machines(account_id, region_name).delete_state_machine(original_resource.arn)
            return created
        return machines(account_id, region_name).update_state_machine(
            original_resource.arn,
            definition=properties.get("DefinitionString"),
            role_arn=properties.get("RoleArn"),
        )

    def delete_machine(cls, resource_name, cloudformation_json, account_id, region_name):
        machines(account_id, region_name).delete_state_machine(resource_name)

    StateMachine.create_from_cloudformation_json = classmethod(create_machine)
    StateMachine.update_from_cloudformation_json = classmethod(update_machine)
    StateMachine.delete_from_cloudformation_json = classmethod(delete_machine)

    # EventBridge rules: a schedule rule (no EventPattern) matched every event; a Lambda
    # target raised NotImplementedError (HTTP 500 on PutEvents).
    from moto.events.models import Rule

    send_to_targets = Rule.send_to_targets
    require_signature(send_to_targets, ["self", "original_event", "transform_input"])

    def send_to_targets_and_functions(self, original_event, transform_input=True):
        if not self.event_pattern.get_pattern():
            return  # a schedule rule: events never match it
        if not self.event_pattern.matches_event(original_event):
            return
        functions = [t for t in self.targets if t["Arn"].split(":")[2:3] == ["lambda"]]
        if functions:
            _invoke_async(self.account_id, self.region_name, [t["Arn"] for t in functions], original_event)
        others = [t for t in self.targets if t not in functions]
        if others:
            all_targets, self.targets = self.targets, others
            try:
                send_to_targets(self, original_event, transform_input)
            finally:
                self.targets = all_targets

    Rule.send_to_targets = send_to_targets_and_functions

    # A resource whose Condition is false is not created: moto listed it as an empty row.
    from moto.cloudformation.models import Stack

    stack_resources = Stack.stack_resources.fget
    Stack.stack_resources = property(lambda self: [r for r in stack_resources(self) if r is not None])

    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()
    for model in models:
        assert model in parsing.get_model_list()


# --------------------------------------------------------------------------- (l) IAM as AWS checks it

# Operations whose IAM action is named differently from the API operation (moto names the
# action after the operation). The batch operations of SQS are authorised as their single
# action (SQS developer guide, "Amazon SQS API permissions").
IAM_ACTION_NAMES = {
    "lambda:Invoke": "lambda:InvokeFunction",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}


# Condition keys whose value every local request has. The local stack is plain HTTP on
# loopback standing in for AWS's TLS endpoints (every SDK client uses TLS there).
LOCAL_CONDITION_VALUES = {"aws:SecureTransport": "true"}


def _conditions_hold(condition: dict, values: dict[str, str]) -> bool:
    """A policy statement's Condition evaluated as IAM does for the operators used here
    (Bool, String/Arn Equals and Like, their negations, ...IfExists); a key without a
    value, or an operator not known here, makes the condition false."""
    import fnmatch

    for operator, tests in condition.items():
        if_exists = operator.endswith("IfExists")
        base = operator[: -len("IfExists")] if if_exists else operator
        for key, expected in (tests or {}).items():
            expected = [str(e) for e in (expected if isinstance(expected, list) else [expected])]
            actual = values.get(key)
            if actual is None:
                if if_exists:
                    continue
                return False
            if base == "Bool":
                holds = actual.lower() in [e.lower() for e in expected]
            elif base in ("StringEquals", "ArnEquals"):
                holds = actual in expected
            elif base in ("StringNotEquals", "ArnNotEquals"):
                holds = actual not in expected
            elif base in ("StringLike", "ArnLike"):
                holds = any(fnmatch.fnmatchcase(actual, e) for e in expected)
            elif base in ("StringNotLike", "ArnNotLike"):
                holds = not any(fnmatch.fnmatchcase(actual, e) for e in expected)
            else:
                return False
            if not holds:
                return False
    return True


def patch_iam_enforcement() -> None:
    """(l) Make moto's IAM authorisation check what AWS checks, for the services used here.

    Enforcement itself is moto's (``INITIAL_NO_AUTH_ACTION_COUNT``, or POST
    ``/moto-api/reset-auth`` with the number of requests still let through); this makes
    it usable with least-privilege policies:

    - moto knows the resource of a request for S3, SQS, STS and IAM only; for the
      other services it checks the action against ``"*"``, which no scoped
      ``Resource`` matches, so every scoped statement denied. Here, a request whose
      resource moto does not know matches any ``Resource``: the ACTION is checked,
      the resource is not (S3 and SQS check both).
    - A statement whose Condition does not hold does not apply (moto DENIED the request,
      whatever the Effect, and knew StringEquals only): conditions are evaluated by
      ``_conditions_hold`` with ``LOCAL_CONDITION_VALUES`` (``aws:SecureTransport`` is
      true: the loopback HTTP stands in for AWS's TLS endpoints). This is what lets the
      report bucket's deny-non-TLS policy stand locally without denying everything.
    - An authorisation error is answered in the service's protocol (query XML with one
      ``Error``, or JSON ``__type``), so every SDK reads its code and message (moto sent
      EC2-style XML, which only botocore read).
    - Actions are checked as IAM names them: ``lambda:InvokeFunction`` for Invoke, SQS batch
      operations as their single action (``IAM_ACTION_NAMES``).
    - AssumeRole of a role whose trust policy names only a service (``lambda.amazonaws.com``)
      crashed the check (HTTP 500); it is denied, as in AWS.
    - moto's Step Functions engine signed its service calls (Lambda Invoke, ...) with a
      fixed key that IAM does not know; it now signs them with credentials of the
      execution's role (assumed in moto's STS), as Step Functions does.
    - ``AWS::IAM::Role`` ignored ``ManagedPolicyArns``; they are attached (AWS managed
      policies are loaded: MOTO_IAM_LOAD_MANAGED_POLICIES), and detached before the role
      is deleted, as CloudFormation does. Its inline ``Policies`` were
      stored as objects, not JSON text, with a null for each ``AWS::NoValue`` statement,
      and every authorisation check of the role failed (HTTP 500); they are stored as
      text, without the dropped statements.

    ``CASCADE_IAM_ENFORCEMENT=1`` turns enforcement on from the first request (see
    ``enforce_iam``).
    """
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    from moto.iam import access_control
    from moto.iam.models import Role, iam_backends

    statement_check = access_control.IAMPolicyStatement.is_action_permitted
    require_signature(
        statement_check, ["self", "action", "resource", "principal", "incoming_condition_values"]
    )

    def is_action_permitted(self, action, resource="*", principal=None, incoming_condition_values=None):
        statement = self._statement
        if not isinstance(statement, dict):
            return access_control.PermissionResult.NEUTRAL
        if statement.get("Condition"):
            values = dict(LOCAL_CONDITION_VALUES, **(incoming_condition_values or {}))
            if not _conditions_hold(statement["Condition"], values):
                return access_control.PermissionResult.NEUTRAL  # the statement does not apply
            statement = {k: v for k, v in statement.items() if k != "Condition"}
        if resource == "*" and statement.get("Resource"):
            statement = dict(statement, Resource="*")
        if statement is not self._statement:
            return statement_check(
                access_control.IAMPolicyStatement(statement), action, resource, principal, incoming_condition_values
            )
        return statement_check(self, action, resource, principal, incoming_condition_values)

    access_control.IAMPolicyStatement.is_action_permitted = is_action_permitted

    check_principal = access_control.IAMPolicyStatement._check_principal
    require_signature(check_principal, ["self", "principal"])

    def _check_principal(self, principal):
        expected = self._statement.get("Principal")
        if isinstance(expected, dict) and "AWS" not in expected:
            return False  # a Service or Federated principal: never an IAM caller
        return check_principal(self, principal)

    access_control.IAMPolicyStatement._check_principal = _check_principal

    request_init = access_control.IAMRequestBase.__init__
    require_signature(request_init, ["self", "account_id", "method", "path", "data", "body", "headers", "action"])

    def init(self, *args, **kwargs):
        request_init(self, *args, **kwargs)
        self._action = IAM_ACTION_NAMES.get(self._action, self._action)

    access_control.IAMRequestBase.__init__ = init

    # Authorisation errors in the request's protocol (moto answered every service with the
    # EC2-style <ErrorResponse><Errors><Error> XML, which SDKs other than botocore cannot
    # read for awsQuery or awsJson services: their callers saw a 403 without a code).
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.exceptions import JsonRESTError, _RESTError

    authorize = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action
    require_signature(authorize, ["self", "resource"])

    class QueryAuthError(_RESTError):
        def __init__(self, error: _RESTError):
            super().__init__(error.error_type, error.message)
            self.code = error.code
            from xmltodict import unparse

            self.description = unparse(
                {"ErrorResponse": {"Error": {"Type": "Sender", "Code": error.error_type, "Message": error.message}}},
                full_document=True,
            )

    def authorize_in_protocol(self, resource="*"):
        try:
            authorize(self, resource)
        except _RESTError as error:
            content_type = (self.headers.get("Content-Type") or "").lower()
            if content_type.startswith("application/x-www-form-urlencoded"):
                raise QueryAuthError(error) from None
            if "json" in content_type or self.headers.get("X-Amz-Target"):
                converted = JsonRESTError(error.error_type, error.message)
                converted.code = error.code
                raise converted from None
            raise

    ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = authorize_in_protocol

    # The Step Functions engine's clients: credentials of the execution's role.
    from moto.stepfunctions.parser.asl.utils import boto_client

    original_client_for = boto_client.boto_client_for
    require_signature(original_client_for, ["region", "service", "state_credentials"])
    def boto_client_for(region, service, state_credentials=None):
        role_arn = getattr(state_credentials, "role_arn", None)
        if not role_arn or role_arn.count(":") < 5:
            return original_client_for(region, service, state_credentials)
        role = _role_session(role_arn, region)
        client = original_client_for(region, service, state_credentials)
        import boto3

        return boto3.client(
            service_name=service,
            region_name=region,
            endpoint_url=client.meta.endpoint_url,
            aws_access_key_id=role.access_key_id,
            aws_secret_access_key=role.secret_access_key,
            aws_session_token=role.session_token,
            config=client.meta.config,
        )

    boto_client.boto_client_for = boto_client_for
    for module in list(sys.modules.values()):
        if getattr(module, "boto_client_for", None) is original_client_for:
            module.boto_client_for = boto_client_for

    create_role = Role.create_from_cloudformation_json.__func__
    require_signature(create_role, ["cls", "resource_name", "cloudformation_json", "account_id", "region_name", "kwargs"])

    def create_role_with_managed_policies(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        role = create_role(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        # Inline policies are kept as documents (JSON text), as PutRolePolicy keeps them;
        # the CloudFormation model stored the template's objects, which broke every check.
        # An `!If [..., !Ref AWS::NoValue]` statement is dropped, as CloudFormation drops it
        # (moto left a null in the Statement list).
        for name, document in list(role.policies.items()):
            if not isinstance(document, str):
                if isinstance(document.get("Statement"), list):
                    document = dict(document, Statement=[st for st in document["Statement"] if st is not None])
                role.policies[name] = json.dumps(document)
        backend = iam_backends[account_id]["aws"]
        for arn in (cloudformation_json.get("Properties") or {}).get("ManagedPolicyArns") or []:
            backend.attach_role_policy(arn, role.name)
        return role

    Role.create_from_cloudformation_json = classmethod(create_role_with_managed_policies)

    # Deleting the role then failed DeleteConflict: CloudFormation detaches its managed
    # policies first.
    delete_role = Role.delete_from_cloudformation_json.__func__
    require_signature(delete_role, ["cls", "resource_name", "cloudformation_json", "account_id", "region_name"])

    def delete_role_detaching(cls, resource_name, cloudformation_json, account_id, region_name):
        backend = iam_backends[account_id]["aws"]
        for role in list(backend.roles.values()):
            if role.name == resource_name or role.arn == resource_name:
                for arn in list(role.managed_policies):
                    backend.detach_role_policy(arn, role.name)
        return delete_role(cls, resource_name, cloudformation_json, account_id, region_name)

    Role.delete_from_cloudformation_json = classmethod(delete_role_detaching)

    if os.environ.get("CASCADE_IAM_ENFORCEMENT") == "1":
        enforce_iam()


# The identity of everything that is not a deployed function (tests, the demo, the CLI run
# by them): the credentials every local client already uses.
LOCAL_ADMIN = {"user": "local-admin", "access_key_id": "test", "secret_access_key": "test"}


def enforce_iam(account_id: str = "123456789012") -> None:
    """Turn moto's IAM authorisation on from the first request.

    Creates the IAM user ``local-admin`` allowed everything, with the access key
    ``test``/``test`` that local clients use, so only the deployed functions (and the
    state machine) act under least privilege: their credentials come from their roles.
    """
    from moto import settings
    from moto.iam.models import iam_backends

    backend = iam_backends[account_id]["aws"]
    backend.create_user(region_name="us-east-1", user_name=LOCAL_ADMIN["user"])
    backend.put_user_policy(
        LOCAL_ADMIN["user"],
        "everything",
        json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
    )
    # A form-encoded (query protocol) request reached the signature check without its body:
    # moto re-encoded the parsed form, which matches only botocore's own encoding, so every
    # CloudFormation, SQS-query or STS call of another SDK failed SignatureDoesNotMatch. The
    # raw bytes are kept for the check (the parsed form and moto's body are unchanged).
    from moto.core.responses import BaseResponse

    setup_class = BaseResponse.setup_class
    require_signature(setup_class, ["self", "request", "full_url", "headers", "use_raw_body"])

    def setup_with_raw_form(self, request, full_url=None, headers=None, use_raw_body=None):
        form = (request.content_type or "").startswith("application/x-www-form-urlencoded")
        raw = request.get_data(cache=True) if form else b""
        setup_class(self, request, full_url, headers, use_raw_body)
        if form and raw:
            self.raw_body = raw
            if self.body == raw or self.body == raw.decode("utf-8", "replace"):
                self.body = b"" if isinstance(self.body, bytes) else ""

    BaseResponse.setup_class = setup_with_raw_form

    key = backend.create_access_key(LOCAL_ADMIN["user"])
    key.access_key_id = LOCAL_ADMIN["access_key_id"]
    key.secret_access_key = LOCAL_ADMIN["secret_access_key"]
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0


# --------------------------------------------------------------------------- main


# --------------------------------------------------------------------------- (p) aws-sdk bodies


def patch_sfn_aws_sdk_streaming_body() -> None:
    """(p) An aws-sdk task's streamed ``Body`` (S3 GetObject) is read into text first.

    Patched: ``StateTaskServiceAwsSdk._eval_service_task``: the boto client's answer is
    read before moto's engine normalises it. Used by the tests' INLINE twin of the state
    machine, whose map takes its items from such a task (an INLINE map has no ItemReader).
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as aws_sdk,
    )

    original_client_for = aws_sdk.boto_client_for

    class _ReadBodies:
        def __init__(self, client):
            self._client = client

        def __getattr__(self, name):
            attribute = getattr(self._client, name)
            if not callable(attribute):
                return attribute

            def call(*args, **kwargs):
                response = attribute(*args, **kwargs)
                body = response.get("Body") if isinstance(response, dict) else None
                if hasattr(body, "read"):
                    response["Body"] = body.read().decode("utf-8")
                return response

            return call

    def boto_client_for(*args, **kwargs):
        return _ReadBodies(original_client_for(*args, **kwargs))

    aws_sdk.boto_client_for = boto_client_for


# --------------------------------------------------------------------------- (q) long maps


def patch_sfn_map_worker_iterates() -> None:
    """(q) A map's worker takes its items in a loop, not by recursing once per item.

    Patched: ``_eval_pool`` of ``IterationWorker`` (INLINE maps) and of
    ``DistributedItemProcessorWorker`` (DISTRIBUTED maps), each the same steps as moto's
    with the recursive call for the next job turned into a loop: moto's recursion
    overflows the stack after about 990 items of one worker (MaxConcurrency 1), the
    worker thread dies of the RecursionError and the map waits for it for ever.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        iteration_worker,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
        distributed_item_processor_worker as distributed,
    )

    def iterating(close_frame: str, source_events: bool):
        def _eval_pool(self, job, worker_frame) -> None:
            while True:
                if job is None:
                    getattr(self._env, close_frame)(worker_frame)
                    return
                job_frame = worker_frame.open_inner_frame()
                self._eval_job(env=job_frame, job=job)
                getattr(worker_frame, close_frame)(job_frame)
                # The job failed, or the worker was stopped: evaluation ends here.
                if isinstance(job.job_output, Exception) or self.stopped():
                    getattr(self._env, close_frame)(worker_frame)
                    self._job_pool.close_job(job)
                    return
                next_job = self._job_pool.next_job()
                if next_job is None:
                    if source_events:
                        # The last job's events are the source of the states after the map.
                        worker_frame.event_history_context.source_event_id = (
                            job_frame.event_history_context.last_published_event_id
                        )
                    getattr(self._env, close_frame)(worker_frame)
                    self._job_pool.close_job(job)
                    return
                self._job_pool.close_job(job)
                job = next_job

        return _eval_pool

    for worker, close_frame, source_events in [
        (iteration_worker.IterationWorker, "close_frame", True),
        (distributed.DistributedItemProcessorWorker, "delete_frame", False),
    ]:
        require_signature(worker._eval_pool, ["self", "job", "worker_frame"])
        worker._eval_pool = iterating(close_frame, source_events)


# --------------------------------------------------------------------------- (n) LastUpdatedTime


def patch_cfn_last_updated_time() -> None:
    """(n) Every update of a stack sets the LastUpdatedTime DescribeStacks shows.

    CloudFormation moves a stack's LastUpdatedTime at each update, whether it completes,
    fails or rolls back; moto 5.2.5 never shows one (the response's shape reads
    ``last_updated_time``, which its Stack does not have). Patched: ``Stack.update``, which
    UpdateStack and (with (g)) an executed UPDATE change set go through, after (d) wraps it.
    """
    from moto.cloudformation.models import Stack
    from moto.core.utils import utcnow

    original_update = Stack.update
    require_signature(original_update, ["self", "template", "role_arn", "parameters", "tags"])

    def update(self, template, role_arn=None, parameters=None, tags=None):
        self.last_updated_time = utcnow()
        return original_update(self, template, role_arn=role_arn, parameters=parameters, tags=tags)

    Stack.update = update


# --------------------------------------------------------------------------- (m), (o) injected faults


def parse_throttle_rules(spec: str, variable: str = "CASCADE_THROTTLE") -> dict[str, int | None]:
    """``service:Action[@path][=N],...`` as {``service:action[@path]``: N, or None for
    every request}."""
    rules: dict[str, int | None] = {}
    for entry in filter(None, (e.strip() for e in spec.split(","))):
        name, _, count = entry.partition("=")
        if ":" not in name:
            raise SystemExit(f"{variable}: `{entry}` is not service:Action[@path][=N]")
        operation, at, path = name.strip().partition("@")
        rules[operation.lower() + (at + path if at else "")] = int(count) if count.strip() else None
    return rules


def throttle_rule_for(
    rules: dict[str, int | None], service: str, action: str, path: str = ""
) -> str | None:
    """The rule (its key) that matches ``service:action`` on ``path``, if one still does."""
    for key, left in rules.items():
        operation, _, within = key.partition("@")
        if operation not in (f"{service}:{action}".lower(), f"{service}:*".lower()):
            continue
        if within and within not in path:
            continue
        if left is None or left > 0:
            return key
    return None


def patch_injected_throttling() -> None:
    """(m) Answer the requests ``CASCADE_THROTTLE`` names as AWS answers a throttled call.

    moto never throttles. The error is in the request's protocol: JSON services get
    ``{"__type": "ThrottlingException"}``, query services (CloudFormation, ...) the XML
    ``<ErrorResponse>`` with code ``Throttling``; both HTTP 400, which the SDKs retry as
    throttling (adaptive retry backs off). Patched: ``BaseResponse.call_action``.
    """
    throttled = parse_throttle_rules(os.environ.get("CASCADE_THROTTLE", "").strip())
    unavailable = parse_throttle_rules(
        os.environ.get("CASCADE_UNAVAILABLE", "").strip(), "CASCADE_UNAVAILABLE"
    )
    if not throttled and not unavailable:
        return
    lock = threading.Lock()
    from moto.core.responses import BaseResponse

    original = BaseResponse.call_action
    require_signature(original, ["self"])

    def take(rules: dict[str, int | None], service: str, action: str, path: str) -> bool:
        with lock:
            key = throttle_rule_for(rules, service, action, path)
            if key is not None and rules[key] is not None:
                rules[key] -= 1
        return key is not None

    def call_action(self):
        service, action = self.boto3_service_name, self._get_action()
        content_type = (self.headers.get("Content-Type") or "").lower()
        if take(unavailable, service, action, ""):
            body = json.dumps({"__type": "ServiceUnavailable", "message": "Service is unavailable"})
            return 503, {"Content-Type": "application/x-amz-json-1.1"}, body
        if not take(throttled, service, action, ""):
            return original(self)
        if content_type.startswith("application/x-www-form-urlencoded"):
            body = (
                "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                "<Message>Rate exceeded</Message></Error><RequestId>throttled</RequestId></ErrorResponse>"
            )
            return 400, {"Content-Type": "text/xml"}, body
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"})
        return 400, {"Content-Type": "application/x-amz-json-1.1"}, body

    BaseResponse.call_action = call_action

    # S3's object requests do not go through call_action: its key_response dispatches them.
    from moto.s3.responses import S3Response

    original_key_response = S3Response.key_response
    require_signature(original_key_response, ["self", "request", "full_url", "headers"])
    object_actions = {"GET": "GetObject", "PUT": "PutObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}

    def key_response(self, request, full_url, headers):
        action = object_actions.get(request.method.upper(), request.method)
        path = urllib.parse.urlparse(full_url).path
        if take(unavailable, "s3", action, path):
            body = (
                "<Error><Code>ServiceUnavailable</Code><Message>Service is unable to handle"
                " request.</Message><RequestId>unavailable</RequestId></Error>"
            )
            return 503, {"Content-Type": "application/xml"}, body
        if take(throttled, "s3", action, path):
            body = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            return 503, {"Content-Type": "application/xml"}, body
        return original_key_response(self, request, full_url, headers)

    S3Response.key_response = key_response


def main(argv: list[str]) -> None:
    """Start the watchdog, configure moto, apply the patches, run moto's server."""
    start_parent_watchdog()
    host, port = parse_server_address(argv)
    configure_moto(port)
    patch_lambda_invoke_forwarding()
    patch_sfn_mock_config()
    patch_cfn_readd_removed_resource()
    patch_cfn_execute_change_set_as_update()  # before (d), which wraps it
    patch_cfn_update_resource_events()  # before (d): a simulated failure records (d)'s events only
    patch_cfn_simulated_update_failure()
    patch_cfn_last_updated_time()  # after (d): a rolled-back update moves it too
    patch_cfn_change_set_replacement()
    patch_ecs_deployment_rollout()
    patch_cfn_secretsmanager_secret()
    patch_cfn_sam_transform()
    patch_cfn_sam_output_resources()
    patch_iam_enforcement()  # before (p): (p) wraps the role-credential clients (l) makes
    patch_sfn_aws_sdk_streaming_body()
    patch_sfn_map_worker_iterates()
    patch_injected_throttling()
    log(f"moto with Secret Cascade patches on http://{host}:{port} (pid {os.getpid()})")

    from moto.server import main as moto_server_main

    moto_server_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
