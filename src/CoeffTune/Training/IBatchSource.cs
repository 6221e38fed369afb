using CoeffTune.Models;
using static TorchSharp.torch;

namespace CoeffTune.Training;

/// <summary>A labelled set the trainer can draw batches from by index.</summary>
public interface IBatchSource
{
    int Count { get; }
    /// <summary>The examples at <paramref name="indices"/> as one batch with labels, on <paramref name="device"/>.</summary>
    Batch MakeBatch(int[] indices, Device device);
}

/// <summary>A batch source over tensors already in memory (inputs (N, ...), labels (N)).</summary>
public sealed class TensorBatchSource(Tensor inputs, Tensor labels) : IBatchSource
{
    public Tensor Inputs => inputs;
    public Tensor Labels => labels;
    public int Count => (int)labels.shape[0];

    public Batch MakeBatch(int[] indices, Device device)
    {
        using var idx = tensor(indices.Select(i => (long)i).ToArray());
        return new Batch(inputs.index_select(0, idx).to(device), Labels: labels.index_select(0, idx).to(device));
    }
}
