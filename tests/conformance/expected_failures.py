"""Known conformance failures: case id -> the first reason the runner reported (generated).

A case listed here is ``xfail(strict=True)``: if it starts passing, the test run fails until the
entry is removed. Regenerate with:

    python3 bench/conformance.py --expected-failures > tests/conformance/expected_failures.py
"""

EXPECTED_FAILURES: dict[str, str] = {
    "each-null.yaml": (
        "note \"log message contains: Found '1' null values on Each, with values=[1, null,"
        " {key=my-key, value=my-value}]\": log contains \"Found '1' null values on Each,..."
    ),
    "flow-trigger-preconditions-flow-listen.yaml": (
        "the asserted execution is started by a Flow trigger "
        "(io.kestra.plugin.core.trigger.Flow): the engine has no triggers"
    ),
    "for-each-item-failed.yaml": (
        "deploy refused: for-each-item-failed.yaml: tasks[0].type: unknown task type "
        '"io.kestra.plugin.core.flow.ForEachItem"'
    ),
    "for-each-item-no-wait.yaml": (
        "deploy refused: for-each-item-no-wait.yaml: tasks[0].type: unknown task type "
        '"io.kestra.plugin.core.flow.ForEachItem"'
    ),
    "for-each-item-outputs-subflow.yaml": (
        "FlowValidationError: for-each-item-outputs.yaml: tasks[0].type: unknown task "
        'type "io.kestra.plugin.core.flow.ForEachItem"'
    ),
    "for-each-item-outputs.yaml": (
        "deploy refused: for-each-item-outputs.yaml: tasks[0].type: unknown task type "
        '"io.kestra.plugin.core.flow.ForEachItem"'
    ),
    "for-each-item-subflow-failed.yaml": (
        "FlowValidationError: for-each-item-failed.yaml: tasks[0].type: unknown task type"
        ' "io.kestra.plugin.core.flow.ForEachItem"'
    ),
    "for-each-item-subflow.yaml": (
        "FlowValidationError: for-each-item.yaml: tasks[0].type: unknown task type "
        '"io.kestra.plugin.core.flow.ForEachItem"'
    ),
    "for-each-item.yaml": (
        "deploy refused: for-each-item.yaml: tasks[0].type: unknown task type "
        '"io.kestra.plugin.core.flow.ForEachItem"'
    ),
    "for-each-item.yaml#variant1": (
        "deploy refused: for-each-item.yaml: tasks[0].type: unknown task type "
        '"io.kestra.plugin.core.flow.ForEachItem"'
    ),
    "pause_on_resume.yaml": (
        "then: resume without inputs (PauseTest#runOnResumeMissingInputs): expected the "
        "resume to be refused, it was accepted"
    ),
    "restart_always_failed.yaml": (
        "then[1] (restart the execution): timeout: still RUNNING (waiting for terminal); "
        "taskruns: 'failStep'=FAILED, 'errorHandler'=CREATED"
    ),
    "restart_local_errors.yaml": (
        "then[1] (restart the execution): timeout: still RUNNING (waiting for terminal); "
        "taskruns: 'before'=SUCCESS, 'sequential'=RUNNING, 'close'=SUCCESS, 'failStep'..."
    ),
    "resume-execution.yaml": (
        "deploy refused: resume-execution.yaml: tasks[0].type: unknown task type "
        '"io.kestra.plugin.core.execution.Resume"'
    ),
    "retry-failed-flow-attempts.yml": (
        "note 'first taskrun attemptNumber == 4': first taskrun attemptNumber == 4: "
        "expected == 4 attempts, got 1"
    ),
    "retry-failed-flow-duration.yml": (
        "note 'first taskrun attemptNumber == 3': first taskrun attemptNumber == 3: "
        "expected == 3 attempts, got 1"
    ),
    "retry-flowable.yaml": (
        "note 'taskrun index 1 attemptNumber == 3': taskrun index 1 attemptNumber == 3: "
        "expected == 3 attempts, got 1"
    ),
    "retry-subflow.yaml": (
        "note 'first taskrun has 3 attempts': first taskrun has 3 attempts: expected == 3 attempts, got 0"
    ),
    "retry-success.yaml": "state SUCCESS, expected WARNING (taskruns: 'failed'=SUCCESS)",
    "sla-execution-condition.yaml#variant1": "state SUCCESS, expected CANCELLED (taskruns: 'return'=SUCCESS)",
    "sla-execution-condition.yaml#variant2": (
        "note 'execution labels contain sla=violated': labels: expected {'sla': "
        "'violated'}, got {'system.correlationId': '<id>'}"
    ),
    "sla-max-duration-fail.yaml": "state SUCCESS, expected FAILED (taskruns: 'sleep'=SUCCESS)",
    "subflow-child.yaml": "state FAILED, expected SUCCESS (taskruns: 'subflow'=FAILED)",
    "subflow-grand-child.yaml": "state FAILED, expected SUCCESS (taskruns: 'firstLevel'=FAILED)",
    "subflow-parent.yaml": "state FAILED, expected SUCCESS (taskruns: 'subflow'=FAILED)",
    "task-allow-failure-executable-foreachitem.yml": (
        "deploy refused: task-allow-failure-executable-foreachitem.yml: tasks[0].type: "
        'unknown task type "io.kestra.plugin.core.flow.ForEachItem"'
    ),
    "task-allow-warning-executable-flow.yml": (
        "state WARNING, expected SUCCESS (taskruns: 'fail'=WARNING, 'log'=SUCCESS)"
    ),
    "task-allow-warning-executable-foreachitem.yml": (
        "deploy refused: task-allow-warning-executable-foreachitem.yml: tasks[0].type: "
        'unknown task type "io.kestra.plugin.core.flow.ForEachItem"'
    ),
    "task-allow-warning-flowable.yml": (
        "state WARNING, expected SUCCESS (taskruns: 'seq'=WARNING, 'fail'=FAILED, 'log-allowed'=SUCCESS)"
    ),
    "task-allow-warning-runnable.yml": (
        "state WARNING, expected SUCCESS (taskruns: 'fail'=WARNING, 'log'=SUCCESS)"
    ),
    "trigger-flow-listener-namespace-condition.yaml": (
        "the asserted execution is started by a Flow trigger "
        "(io.kestra.plugin.core.trigger.Flow): the engine has no triggers"
    ),
    "trigger-flow-listener-no-inputs.yaml": (
        "the asserted execution is started by a Flow trigger "
        "(io.kestra.plugin.core.trigger.Flow): the engine has no triggers"
    ),
    "trigger-flow-listener-with-pause.yaml": (
        "the asserted execution is started by a Flow trigger "
        "(io.kestra.plugin.core.trigger.Flow): the engine has no triggers"
    ),
    "trigger-flow-listener.yaml": (
        "the asserted execution is started by a Flow trigger "
        "(io.kestra.plugin.core.trigger.Flow): the engine has no triggers"
    ),
    "trigger-multiplecondition-listener.yaml": (
        "the asserted execution is started by a Flow trigger "
        "(io.kestra.plugin.core.trigger.Flow): the engine has no triggers"
    ),
    "trigger-toggle.yaml": (
        "deploy refused: trigger-toggle.yaml: tasks[0].type: unknown task type "
        '"io.kestra.core.tasks.trigger.Toggle"'
    ),
    "variables-invalid.yaml": (
        "note \"its log contains 'Unable to find `inputs` used in the expression "
        "`{{inputs.invalid}}`'\": taskrun index 1 FAILED log contains 'Unable to find "
        "`inputs` u..."
    ),
    "working-directory-taskrun-nested.yml": (
        "state FAILED, expected SUCCESS (taskruns: 'parallel'=FAILED, 'seq'[1]=FAILED, "
        "'workingDir'[1]=FAILED, 'log-taskrun'[1]=FAILED) (+1 more)"
    ),
}
