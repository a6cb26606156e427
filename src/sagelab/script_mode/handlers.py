"""The inference toolkit contract: the user's `model_fn`, `input_fn`, `predict_fn`, `output_fn` (or a
`transform_fn`), with each framework's default for a function the script does not define.

The script is the model container's `SAGEMAKER_PROGRAM` (e.g. `inference.py`, or the training script when
it also defines the functions), found in `SAGEMAKER_SUBMIT_DIRECTORY`: the `code/` folder the SDK packs
into model.tar.gz (`/opt/ml/model/code`), or a source bundle on S3. It is imported in the serving process
(never in the server), with the container's Environment set and its folder on `sys.path`, as the
toolkit imports it. The user's `model_fn` may load whatever format the user chose; sagelab's defaults only
read formats that cannot run code (TorchScript, XGBoost JSON/UBJ, .npy without pickles).
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from sagelab.algorithms.base import InferenceError, split_content_type
from sagelab.containers.archives import fetch_folder
from sagelab.containers.paths import CONTAINER_PREFIX
from sagelab.containers.requirements import python_for
from sagelab.script_mode import codecs
from sagelab.script_mode.images import Framework

PROGRAM = "SAGEMAKER_PROGRAM"
SUBMIT_DIRECTORY = "SAGEMAKER_SUBMIT_DIRECTORY"
DEFAULT_ACCEPT = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
_FUNCTIONS = ("model_fn", "input_fn", "predict_fn", "output_fn", "transform_fn")


class HandlerError(Exception):
    """The inference script cannot be found or used; the message becomes the FailureReason."""


# --- the framework defaults ---------------------------------------------------------------------------
def _sklearn_model_fn(model_dir: str) -> Any:
    raise HandlerError("The inference script defines no model_fn: the scikit-learn container needs one to load "
                       "the model (e.g. `def model_fn(model_dir): return joblib.load(...)`).")


def _torch_model_fn(model_dir: str) -> Any:
    import torch

    path = Path(model_dir) / "model.pt"
    if not path.is_file():
        raise HandlerError("The inference script defines no model_fn, and the default one loads a TorchScript "
                           f"model from model.pt, which the model data does not contain ({model_dir}).")
    return torch.jit.load(str(path), map_location="cpu")


def _xgboost_model_fn(model_dir: str) -> Any:
    import xgboost as xgb

    path = Path(model_dir) / "xgboost-model"
    if not path.is_file():
        raise HandlerError("The inference script defines no model_fn, and the default one loads the booster "
                           f"file xgboost-model, which the model data does not contain ({model_dir}).")
    booster = xgb.Booster()
    booster.load_model(bytearray(path.read_bytes()))  # JSON or UBJ: these formats cannot carry code
    return booster


def _sklearn_input_fn(body: bytes, content_type: str) -> Any:
    array = codecs.decode(body, content_type)
    return array.astype("float32") if content_type in codecs.UTF8_TYPES else array


def _torch_input_fn(body: bytes, content_type: str) -> Any:
    import torch

    array = codecs.decode(body, content_type)
    return torch.FloatTensor(array) if content_type in codecs.UTF8_TYPES else torch.from_numpy(array)


def _xgboost_input_fn(body: bytes, content_type: str) -> Any:
    import xgboost as xgb

    array = codecs.decode(body, content_type)
    return xgb.DMatrix(array.reshape(1, -1) if array.ndim == 1 else array)


def _predict_fn(data: Any, model: Any) -> Any:
    return model.predict(data)


def _torch_predict_fn(data: Any, model: Any) -> Any:
    import torch

    model.eval()
    with torch.no_grad():
        return model(data)


def _output_fn(prediction: Any, accept: str) -> bytes:
    return codecs.encode(prediction, accept)


DEFAULTS: dict[str, dict[str, Callable[..., Any]]] = {
    "sklearn": {"model_fn": _sklearn_model_fn, "input_fn": _sklearn_input_fn, "predict_fn": _predict_fn,
                "output_fn": _output_fn},
    "torch": {"model_fn": _torch_model_fn, "input_fn": _torch_input_fn, "predict_fn": _torch_predict_fn,
              "output_fn": _output_fn},
    "xgboost": {"model_fn": _xgboost_model_fn, "input_fn": _xgboost_input_fn, "predict_fn": _predict_fn,
                "output_fn": _output_fn},
}


# --- finding and importing the script --------------------------------------------------------------------
def code_folder(model_dir: Path, environment: dict[str, str], *, blobs: Any, work_dir: Path) -> Path:
    where = environment.get(SUBMIT_DIRECTORY, "")
    if where.startswith("s3://"):
        return fetch_folder(blobs, where, work_dir / "code", what=f"inference code ({SUBMIT_DIRECTORY})")
    if where == CONTAINER_PREFIX + "/model" or where.startswith(CONTAINER_PREFIX + "/model/"):
        return model_dir / where[len(CONTAINER_PREFIX + "/model"):].lstrip("/")
    if where.startswith("file://") and Path(where[7:]).is_dir():
        return Path(where[7:])
    if not where and (model_dir / "code").is_dir():
        return model_dir / "code"
    if not where:
        return model_dir
    raise HandlerError(f"{SUBMIT_DIRECTORY} {where!r} is not a place sagelab can read code from: expected an "
                       "s3:// URI of a source bundle or /opt/ml/model/code.")


def import_script(code_dir: Path, program: str, *, cache_dir: Path | None, log: Any = None) -> ModuleType:
    script = code_dir / program
    if not script.is_file():
        present = sorted(p.name for p in code_dir.glob("*"))[:20] if code_dir.is_dir() else []
        raise HandlerError(f"The inference script {program!r} ({PROGRAM}) is not in the model's code "
                           f"({code_dir.name}/ holds: {', '.join(present) or 'nothing'}).")
    requirements = code_dir / "requirements.txt"
    if requirements.is_file() and cache_dir is not None:
        python = Path(python_for(requirements, cache_dir / "requirements", log or sys.stderr))
        sys.path[:0] = [str(p) for p in (python.parent.parent / "lib").glob("python*/site-packages")]
    sys.path.insert(0, str(code_dir))
    name = script.stem
    spec = importlib.util.spec_from_file_location(name, script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's code: whatever it raised is the reason
        raise HandlerError(f"importing the inference script {program} raised {type(exc).__name__}: {exc}") from exc
    return module


# --- the predictor ----------------------------------------------------------------------------------------
def _with_context(function: Callable[..., Any], given: int) -> Callable[..., Any]:
    """The handler, called with the toolkit's optional trailing `context` argument (None here) when it takes
    one more than the `given` ones; decided once, not per request."""
    try:
        takes = len(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        takes = given
    return (lambda *args: function(*args, None)) if takes > given else function


def _call(function: Callable[..., Any], *args: Any) -> Any:
    return _with_context(function, len(args))(*args)


class ScriptPredictor:
    """Answers requests with the user's functions: decode (input_fn), predict (predict_fn), encode
    (output_fn), or all three at once (transform_fn)."""

    def __init__(self, module: ModuleType, framework: Framework, model_dir: Path, default_accept: str):
        defaults = DEFAULTS[framework.module]
        user = {name: getattr(module, name) for name in _FUNCTIONS if callable(getattr(module, name, None))}
        if "transform_fn" in user and {"input_fn", "predict_fn", "output_fn"} & user.keys():
            raise HandlerError("The inference script defines transform_fn together with input_fn, predict_fn or "
                               "output_fn; define either transform_fn or the other three.")
        self.framework = framework
        self.functions = {**defaults, **user}
        self.transform_fn = _with_context(user["transform_fn"], 4) if "transform_fn" in user else None
        self.input_fn = _with_context(self.functions["input_fn"], 2)
        self.predict_fn = _with_context(self.functions["predict_fn"], 2)
        self.output_fn = _with_context(self.functions["output_fn"], 2)
        self.default_accept = default_accept
        self.content_types = codecs.SUPPORTED if "input_fn" not in user and not self.transform_fn else ("*/*",)
        self.accept_types = codecs.SUPPORTED if "output_fn" not in user and not self.transform_fn else ("*/*",)
        try:
            self.model = _call(self.functions["model_fn"], str(model_dir))
        except HandlerError:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's code: whatever it raised is the reason
            raise HandlerError(f"model_fn raised {type(exc).__name__}: {exc}") from exc

    def set_threads(self, threads: int) -> None:
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        content_type = split_content_type(content_type)[0] or codecs.JSON
        accept = self._accept(accept)
        if self.transform_fn is not None:
            result = self.transform_fn(self.model, body, content_type, accept)
        else:
            result = self.output_fn(self.predict_fn(self.input_fn(body, content_type), self.model), accept)
        if isinstance(result, tuple) and len(result) == 2:
            result, accept = result
        if isinstance(result, str):
            return result.encode("utf-8"), accept
        if isinstance(result, (bytes, bytearray, memoryview)):
            return bytes(result), accept
        return codecs.encode(result, accept), accept

    def _accept(self, accept: str) -> str:
        offered = [split_content_type(part)[0] for part in (accept or "").split(",") if part.strip()]
        offered = [a for a in offered if a and a != "*/*"]
        if not offered:
            return self.default_accept
        if self.accept_types == ("*/*",):
            return offered[0]
        for candidate in offered:
            if candidate in self.accept_types:
                return candidate
        raise InferenceError(406, f"Accept {accept} is not supported by the default output_fn: expected one of "
                             f"{', '.join(codecs.SUPPORTED)}. Define output_fn to write other types.")


def load(model_dir: Path, framework: Framework, environment: dict[str, str], *, blobs: Any, work_dir: Path,
         cache_dir: Path | None = None) -> ScriptPredictor:
    program = environment.get(PROGRAM)
    if not program:
        raise HandlerError(f"The model container's Environment has no {PROGRAM}: it names the inference script "
                           "(the SDK sets it from entry_point).")
    os.environ.update({k: str(v) for k, v in environment.items()})
    code_dir = code_folder(model_dir, environment, blobs=blobs, work_dir=work_dir)
    module = import_script(code_dir, program, cache_dir=cache_dir)
    return ScriptPredictor(module, framework, model_dir, environment.get(DEFAULT_ACCEPT) or codecs.JSON)
