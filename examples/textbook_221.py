"""The textbook 2-2-1 worked example, computed and printed step by step.

Run as a script: ``python examples/textbook_221.py [digits]``.

Network: 2 inputs, 2 sigmoid hidden neurons, 1 sigmoid output, squared
error 0.5 (a - y)^2; x = [0.5, 0.3], y = 0.8, W1 = [[0.2, 0.5], [0.3, 0.4]],
b1 = [0.1, 0.2], W2 = [[0.6, 0.7]], b2 = [0.1]. Every z, a, the loss and
every dL/da, dL/dz, dL/dW, dL/db is printed with its formula and value. See
pybackprop.reference.textbook_221 for why hand-rounded walk-throughs print
slightly different third digits.
"""
import sys

from pybackprop import reference


def main(digits=6):
    example = reference.textbook_221()
    print(reference.explain(**example, digits=digits))
    loss, grad_weights, grad_biases = reference.loss_and_grad(
        example["weights"], example["biases"], [example["x"]], [example["y"]],
        activation=example["activation"], output=example["output"], loss=example["loss"])
    print()
    print("Summary (unrounded)")
    print(f"  loss   {loss:.10f}")
    for layer, (gW, gb) in enumerate(zip(grad_weights, grad_biases), start=1):
        print(f"  dL/dW{layer}  {[[round(v, 10) for v in row] for row in gW]}")
        print(f"  dL/db{layer}  {[round(v, 10) for v in gb]}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 6)
