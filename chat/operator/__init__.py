"""The operator: the chat's model acting through the tool registry (docs/operator.md).

`policy` says what runs, waits or is refused; `approvals` keeps the owner's decisions;
`turn` runs one chat turn's loop of model requests and tool calls.
"""
