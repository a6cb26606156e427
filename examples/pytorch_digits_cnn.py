"""PyTorch script mode, in the shape of SageMaker's "PyTorch MNIST" sample, on scikit-learn's handwritten
digits (8x8 images, shipped inside scikit-learn, so the example needs no download).

`mnist.py` is the user's training script (argparse, SM_* paths, a small CNN, `model.pth` as a state_dict)
and also defines `model_fn` for serving; the PyTorch container's defaults decode the JSON request into a
tensor, call the model and encode its output. Runs as is against AWS or a sagelab server:

    sagelab server --home ~/.sagelab &
    eval "$(sagelab env --home ~/.sagelab)"
    python examples/pytorch_digits_cnn.py

The last line printed is `RESULT {...}` with the quality figures, for scripts that run the example.
"""

from __future__ import annotations

import json
import os
import tempfile
import textwrap

import numpy as np
import sagemaker
from sagemaker.deserializers import JSONDeserializer
from sagemaker.inputs import TrainingInput
from sagemaker.pytorch import PyTorch
from sagemaker.serializers import JSONSerializer
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

ROLE = os.environ.get("SAGEMAKER_ROLE", "arn:aws:iam::111122223333:role/service-role/SageMakerRole")
PREFIX = "examples/pytorch-digits"

MNIST_SCRIPT = textwrap.dedent('''
    import argparse
    import os

    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
            self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
            self.fc1 = nn.Linear(32 * 2 * 2, 64)
            self.fc2 = nn.Linear(64, 10)

        def forward(self, x):
            x = x.view(-1, 1, 8, 8)
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = F.relu(self.fc1(x.flatten(1)))
            return F.log_softmax(self.fc2(x), dim=1)


    def load(channel):
        data = np.load(os.path.join(channel, "digits.npz"))
        return torch.tensor(data["images"], dtype=torch.float32), torch.tensor(data["labels"])


    def model_fn(model_dir):
        model = Net()
        with open(os.path.join(model_dir, "model.pth"), "rb") as f:
            model.load_state_dict(torch.load(f, weights_only=True))
        return model


    if __name__ == "__main__":
        parser = argparse.ArgumentParser()
        parser.add_argument("--epochs", type=int, default=10)
        parser.add_argument("--batch-size", type=int, default=64)
        parser.add_argument("--lr", type=float, default=0.01)
        parser.add_argument("--model-dir", type=str, default=os.environ["SM_MODEL_DIR"])
        parser.add_argument("--train", type=str, default=os.environ["SM_CHANNEL_TRAINING"])
        parser.add_argument("--test", type=str, default=os.environ["SM_CHANNEL_TESTING"])
        args = parser.parse_args()
        torch.manual_seed(1)

        x_train, y_train = load(args.train)
        x_test, y_test = load(args.test)
        model = Net()
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
        for epoch in range(1, args.epochs + 1):
            model.train()
            order = torch.randperm(len(x_train))
            for start in range(0, len(order), args.batch_size):
                batch = order[start:start + args.batch_size]
                optimizer.zero_grad()
                loss = F.nll_loss(model(x_train[batch]), y_train[batch])
                loss.backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                output = model(x_test)
                test_loss = F.nll_loss(output, y_test).item()
                accuracy = (output.argmax(1) == y_test).float().mean().item()
            print(f"Train Epoch: {epoch} Test set: Average loss: {test_loss:.4f}, Accuracy: {accuracy:.4f}")
        torch.save(model.state_dict(), os.path.join(args.model_dir, "model.pth"))
''')


def main() -> dict:
    session = sagemaker.Session()
    bucket = session.default_bucket()

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(images, digits.target, test_size=0.2, random_state=0,
                                                        stratify=digits.target)
    with tempfile.TemporaryDirectory() as tmp:
        for name, (x, y) in {"training": (x_train, y_train), "testing": (x_test, y_test)}.items():
            os.makedirs(f"{tmp}/{name}")
            np.savez(f"{tmp}/{name}/digits.npz", images=x, labels=y)
            session.upload_data(f"{tmp}/{name}/digits.npz", bucket, f"{PREFIX}/{name}")
        os.makedirs(f"{tmp}/code")
        with open(f"{tmp}/code/mnist.py", "w") as f:
            f.write(MNIST_SCRIPT)

        estimator = PyTorch(entry_point="mnist.py", source_dir=f"{tmp}/code", role=ROLE, framework_version="2.1",
                            py_version="py310", instance_count=1, instance_type="ml.c5.2xlarge",
                            hyperparameters={"epochs": 12, "lr": 0.05}, sagemaker_session=session,
                            output_path=f"s3://{bucket}/{PREFIX}/output",
                            metric_definitions=[{"Name": "test:accuracy", "Regex": "Accuracy: ([0-9.]+)"},
                                                {"Name": "test:loss", "Regex": "Average loss: ([0-9.]+)"}])
        estimator.fit({"training": TrainingInput(f"s3://{bucket}/{PREFIX}/training"),
                       "testing": TrainingInput(f"s3://{bucket}/{PREFIX}/testing")})
    job = estimator.latest_training_job.describe()
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    print(f"test:accuracy of the last epoch: {metrics['test:accuracy']:.4f}")

    predictor = estimator.deploy(initial_instance_count=1, instance_type="ml.m5.large",
                                 serializer=JSONSerializer(), deserializer=JSONDeserializer())
    try:
        log_probabilities = np.array(predictor.predict(x_test[:100].tolist()))
    finally:
        predictor.delete_model()
        predictor.delete_endpoint()
    endpoint_accuracy = float(np.mean(log_probabilities.argmax(axis=1) == y_test[:100]))
    print(f"endpoint accuracy on 100 test images: {endpoint_accuracy:.2f}")
    return {"job_accuracy": metrics["test:accuracy"], "endpoint_rows": len(log_probabilities),
            "endpoint_accuracy": endpoint_accuracy}


if __name__ == "__main__":
    print("RESULT " + json.dumps(main()))
