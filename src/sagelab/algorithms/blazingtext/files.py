"""The files of a BlazingText artifact (AWS's names): fastText model files and the word2vec text vectors."""

VECTORS_BIN, VECTORS_TXT, MODEL_BIN, EVAL_JSON = "vectors.bin", "vectors.txt", "model.bin", "eval.json"
