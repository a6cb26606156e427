"""The life cycle SageMaker's training, batch transform and processing jobs share: one resource document
with a lease, one task on the compute engine, and the same way of ending (completed by the job's process,
or settled by the service when the task is stopped, fails, runs out of time or outlives its server).

`kind` describes what tells one kind of job from another, `service` is the API side of the life cycle and
`process` the side that runs inside the job's own process.
"""
