"""Managed spot training with checkpoints, in the shape of SageMaker's "PyTorch managed spot training with
checkpointing" sample, on scikit-learn's handwritten digits (no download).

The training script saves a checkpoint to /opt/ml/checkpoints after every epoch and, when it starts, resumes
from the newest one there. SageMaker copies that folder to `checkpoint_s3_uri` while the job runs and back
before a restarted (interrupted) job's script starts. As in the sample, a first spot job trains 4 epochs;
a second job with the same `checkpoint_s3_uri` and 8 epochs finds the first job's checkpoints and trains
only the 4 epochs that are left. Runs as is against AWS or a sagelab server:

    sagelab server --home ~/.sagelab &
    eval "$(sagelab env --home ~/.sagelab)"
    python examples/spot_training_checkpoints.py

On sagelab a spot job can also really be interrupted (`sagelab spot-interrupt <job>`, or the server setting
`spot_interruption_after_seconds`): it shows SecondaryStatus Interrupted, restarts, resumes from its last
checkpoint, and bills less than its training time.

The last line printed is `RESULT {...}` with the figures, for scripts that run the example.
"""

from __future__ import annotations

import json
import os
import tempfile
import textwrap

import numpy as np
import sagemaker
from sagemaker.inputs import TrainingInput
from sagemaker.pytorch import PyTorch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

ROLE = os.environ.get("SAGEMAKER_ROLE", "arn:aws:iam::111122223333:role/service-role/SageMakerRole")
PREFIX = "examples/spot-checkpoints"

TRAIN_SCRIPT = textwrap.dedent('''
    import argparse
    import os

    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    CHECKPOINTS = "/opt/ml/checkpoints"


    def load(channel):
        data = np.load(os.path.join(channel, "digits.npz"))
        return torch.tensor(data["images"], dtype=torch.float32).flatten(1), torch.tensor(data["labels"])


    def latest_checkpoint():
        if not os.path.isdir(CHECKPOINTS):
            return None
        names = sorted(n for n in os.listdir(CHECKPOINTS) if n.startswith("checkpoint-") and n.endswith(".pt"))
        return os.path.join(CHECKPOINTS, names[-1]) if names else None


    if __name__ == "__main__":
        parser = argparse.ArgumentParser()
        parser.add_argument("--epochs", type=int, default=4)
        parser.add_argument("--lr", type=float, default=0.1)
        parser.add_argument("--model-dir", default=os.environ["SM_MODEL_DIR"])
        parser.add_argument("--train", default=os.environ["SM_CHANNEL_TRAIN"])
        parser.add_argument("--test", default=os.environ["SM_CHANNEL_TEST"])
        args = parser.parse_args()
        torch.manual_seed(0)
        x_train, y_train = load(args.train)
        x_test, y_test = load(args.test)
        model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
        first_epoch = 1
        checkpoint = latest_checkpoint()
        if checkpoint:
            with open(checkpoint, "rb") as f:
                state = torch.load(f, weights_only=True)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            first_epoch = state["epoch"] + 1
            print(f"Resuming from checkpoint {os.path.basename(checkpoint)}: epoch {first_epoch}")
        else:
            print("No checkpoint found: training from the start")
        os.makedirs(CHECKPOINTS, exist_ok=True)
        for epoch in range(first_epoch, args.epochs + 1):
            model.train()
            order = torch.randperm(len(x_train))
            for start in range(0, len(order), 64):
                batch = order[start:start + 64]
                optimizer.zero_grad()
                F.cross_entropy(model(x_train[batch]), y_train[batch]).backward()
                optimizer.step()
            with torch.no_grad():
                accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
            print(f"Epoch {epoch}: test accuracy {accuracy:.4f}")
            with open(os.path.join(CHECKPOINTS, f"checkpoint-{epoch:03d}.pt"), "wb") as f:
                torch.save({"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict()}, f)
        with open(os.path.join(args.model_dir, "model.pth"), "wb") as f:
            torch.save(model.state_dict(), f)
''')


def spot_estimator(session, code_dir: str, bucket: str, checkpoints: str, epochs: int) -> PyTorch:
    return PyTorch(entry_point="train.py", source_dir=code_dir, role=ROLE, framework_version="2.1",
                   py_version="py310", instance_count=1, instance_type="ml.c5.xlarge",
                   hyperparameters={"epochs": epochs}, sagemaker_session=session,
                   output_path=f"s3://{bucket}/{PREFIX}/output",
                   use_spot_instances=True, max_run=600, max_wait=1200, checkpoint_s3_uri=checkpoints,
                   metric_definitions=[{"Name": "test:accuracy", "Regex": "test accuracy ([0-9.]+)"}])


def main() -> dict:
    session = sagemaker.Session()
    bucket = session.default_bucket()
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(images, digits.target, test_size=0.2, random_state=0,
                                                        stratify=digits.target)
    checkpoints = f"s3://{bucket}/{PREFIX}/checkpoints/{sagemaker.utils.unique_name_from_base('run')}"
    jobs = []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = {}
        for name, (x, y) in {"train": (x_train, y_train), "test": (x_test, y_test)}.items():
            os.makedirs(f"{tmp}/{name}")
            np.savez(f"{tmp}/{name}/digits.npz", images=x, labels=y)
            inputs[name] = TrainingInput(session.upload_data(f"{tmp}/{name}/digits.npz", bucket, f"{PREFIX}/{name}"))
        os.makedirs(f"{tmp}/code")
        with open(f"{tmp}/code/train.py", "w") as f:
            f.write(TRAIN_SCRIPT)
        for epochs in (4, 8):  # the second job resumes from the first one's checkpoints
            estimator = spot_estimator(session, f"{tmp}/code", bucket, checkpoints, epochs)
            estimator.fit(inputs)
            jobs.append(estimator.latest_training_job.describe())

    saved = sorted(obj.rsplit("/", 1)[-1] for obj in sagemaker.s3.S3Downloader.list(checkpoints, session))
    for job in jobs:
        savings = 1 - job["BillableTimeInSeconds"] / job["TrainingTimeInSeconds"]
        print(f"{job['TrainingJobName']}: training {job['TrainingTimeInSeconds']} s, billable "
              f"{job['BillableTimeInSeconds']} s, managed spot savings {savings:.0%}")
    accuracy = {m["MetricName"]: m["Value"] for m in jobs[-1]["FinalMetricDataList"]}["test:accuracy"]
    return {"spot": [job["EnableManagedSpotTraining"] for job in jobs],
            "checkpoint_uri_echoed": jobs[-1]["CheckpointConfig"]["S3Uri"] == checkpoints,
            "checkpoints_saved": saved, "test_accuracy": accuracy,
            "max_wait": jobs[-1]["StoppingCondition"]["MaxWaitTimeInSeconds"],
            "billable_not_above_training": all(j["BillableTimeInSeconds"] <= j["TrainingTimeInSeconds"]
                                               for j in jobs)}


if __name__ == "__main__":
    print("RESULT " + json.dumps(main()))
