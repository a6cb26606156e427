"""What a SageMaker container gives the user's code, for code that runs as a plain process here.

`paths` maps `/opt/ml/...` onto a job's own folder, `launcher` runs a script the way the container's
`python3 <script>` would, and `user_process` starts it as a child of the job process and keeps the tail
of its stderr for the FailureReason. Processing jobs and script-mode training share them.
"""
