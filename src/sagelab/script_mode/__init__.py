"""Script mode: the user's own training and inference scripts in SageMaker's framework images.

The framework images (scikit-learn, PyTorch, XGBoost) are algorithms like the built-in ones, selected
when the job names an entry point (`sagemaker_program`, `SAGEMAKER_PROGRAM`): training runs the script in
a child process with the SageMaker training toolkit's environment (`toolkit_env`), and serving wraps the
script's `model_fn` / `input_fn` / `predict_fn` / `output_fn` with the inference toolkits' defaults
(`handlers`, `codecs`).
"""
