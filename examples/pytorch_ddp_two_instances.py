"""Distributed data parallel PyTorch on two instances, in the shape of SageMaker's "distributed training
with PyTorch DDP (torch_distributed)" samples, on scikit-learn's handwritten digits (no download).

`distribution={"torch_distributed": {"enabled": True}}` makes the training toolkit launch the script with
torchrun on every instance: WORLD_SIZE, RANK and LOCAL_RANK are set, `init_process_group` meets at
MASTER_ADDR:MASTER_PORT, DistributedDataParallel averages the gradients, a DistributedSampler gives each rank
its half of the data, and rank 0 saves the model. The SDK accepts torch_distributed only on GPU (or
Trainium) instance types, so this asks for two ml.g5.xlarge; the script picks NCCL when it has a GPU and
gloo otherwise (sagelab's hosts are CPU processes of one machine). Runs as is against AWS or a sagelab server:

    sagelab server --home ~/.sagelab &
    eval "$(sagelab env --home ~/.sagelab)"
    python examples/pytorch_ddp_two_instances.py

The last line printed is `RESULT {...}` with the figures, for scripts that run the example.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
import textwrap

import numpy as np
import sagemaker
from sagemaker.inputs import TrainingInput
from sagemaker.pytorch import PyTorch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

ROLE = os.environ.get("SAGEMAKER_ROLE", "arn:aws:iam::111122223333:role/service-role/SageMakerRole")
PREFIX = "examples/pytorch-ddp"

TRAIN_SCRIPT = textwrap.dedent('''
    import argparse
    import json
    import os

    import numpy as np
    import torch
    import torch.distributed as dist
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader, TensorDataset
    from torch.utils.data.distributed import DistributedSampler


    def load(channel):
        data = np.load(os.path.join(channel, "digits.npz"))
        return TensorDataset(torch.tensor(data["images"], dtype=torch.float32).flatten(1),
                             torch.tensor(data["labels"]))


    if __name__ == "__main__":
        parser = argparse.ArgumentParser()
        parser.add_argument("--epochs", type=int, default=10)
        parser.add_argument("--lr", type=float, default=0.05)
        parser.add_argument("--model-dir", default=os.environ["SM_MODEL_DIR"])
        parser.add_argument("--train", default=os.environ["SM_CHANNEL_TRAIN"])
        parser.add_argument("--test", default=os.environ["SM_CHANNEL_TEST"])
        args = parser.parse_args()

        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        rank, world = dist.get_rank(), dist.get_world_size()
        device = torch.device(f"cuda:{os.environ['LOCAL_RANK']}" if backend == "nccl" else "cpu")
        print(f"rank {rank} of {world} on {os.environ['SM_CURRENT_HOST']} ({backend})")

        torch.manual_seed(0)
        train = load(args.train)
        sampler = DistributedSampler(train, num_replicas=world, rank=rank, shuffle=True, seed=0)
        loader = DataLoader(train, batch_size=32, sampler=sampler)
        model = DistributedDataParallel(nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)).to(device))
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
        for epoch in range(1, args.epochs + 1):
            sampler.set_epoch(epoch)
            model.train()
            seen = 0
            for x, y in loader:
                optimizer.zero_grad()
                F.cross_entropy(model(x.to(device)), y.to(device)).backward()
                optimizer.step()
                seen += len(y)
            if rank == 0:
                x_test, y_test = load(args.test).tensors
                with torch.no_grad():
                    accuracy = (model(x_test.to(device)).argmax(1).cpu() == y_test).float().mean().item()
                print(f"Epoch {epoch}: rank 0 trained on {seen} samples, test accuracy {accuracy:.4f}")
        if rank == 0:
            with open(os.path.join(args.model_dir, "model.pth"), "wb") as f:
                torch.save(model.module.state_dict(), f)
            with open(os.path.join(args.model_dir, "training.json"), "w") as f:
                json.dump({"world_size": world, "samples_per_rank": seen, "train_samples": len(train)}, f)
        dist.destroy_process_group()
''')


def main() -> dict:
    session = sagemaker.Session()
    bucket = session.default_bucket()
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(images, digits.target, test_size=0.2, random_state=0,
                                                        stratify=digits.target)
    with tempfile.TemporaryDirectory() as tmp:
        inputs = {}
        for name, (x, y) in {"train": (x_train, y_train), "test": (x_test, y_test)}.items():
            os.makedirs(f"{tmp}/{name}")
            np.savez(f"{tmp}/{name}/digits.npz", images=x, labels=y)
            inputs[name] = TrainingInput(session.upload_data(f"{tmp}/{name}/digits.npz", bucket, f"{PREFIX}/{name}"))
        os.makedirs(f"{tmp}/code")
        with open(f"{tmp}/code/train_ddp.py", "w") as f:
            f.write(TRAIN_SCRIPT)
        estimator = PyTorch(entry_point="train_ddp.py", source_dir=f"{tmp}/code", role=ROLE,
                            framework_version="2.1.0", py_version="py310", instance_count=2,
                            instance_type="ml.g5.xlarge", distribution={"torch_distributed": {"enabled": True}},
                            hyperparameters={"epochs": 10}, sagemaker_session=session,
                            output_path=f"s3://{bucket}/{PREFIX}/output",
                            metric_definitions=[{"Name": "test:accuracy", "Regex": "test accuracy ([0-9.]+)"}])
        estimator.fit(inputs)
    job = estimator.latest_training_job.describe()
    accuracy = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}["test:accuracy"]
    artifact = sagemaker.s3.S3Downloader.read_bytes(job["ModelArtifacts"]["S3ModelArtifacts"], session)
    with tarfile.open(fileobj=io.BytesIO(artifact)) as tar:
        members = sorted(tar.getnames())
        training = json.load(tar.extractfile("training.json"))
    print(f"{job['TrainingJobName']}: {training['world_size']} ranks, test accuracy {accuracy:.4f}")
    return {"instance_count": job["ResourceConfig"]["InstanceCount"], "world_size": training["world_size"],
            "samples_per_rank": training["samples_per_rank"], "train_samples": training["train_samples"],
            "artifact": members, "test_accuracy": accuracy,
            "distributed_flag": job["HyperParameters"].get("sagemaker_torch_distributed_enabled")}


if __name__ == "__main__":
    print("RESULT " + json.dumps(main()))
