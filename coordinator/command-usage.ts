/** One usage text per coordinator command, shown by `help` and `<command> --help`. */
export const COMMAND_USAGE = {
  summary: `summary [--size 224] [--json]
  Prints each stage's output shape for one size x size image and the trainable parameter count.`,
  train: `train [--model resnet18|tiny-cnn] [--epochs 10] [--batch-size 256] [--lr 0.05] [--resize 96] [--seed 0]
      [--limit-train N] [--limit-test N] [--micro-batch N] [--backend auto|tensorflow-gpu|tensorflow|onednn|wasm|cpu]
      [--threads N] [--checkpoint-dir DIR] [--checkpoint-every STEPS] [--resume] [--json]
  Trains in this one process (no Redis), printing the seed's per-epoch line.`,
} as const;
