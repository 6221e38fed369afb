using static TorchSharp.torch;

namespace CoeffTune.Models;

/// <summary>
/// One batch for a classifier. For images, <see cref="Inputs"/> is (B, C, H, W) float; for text it is
/// token ids (B, N) int64 with <see cref="AttentionMask"/> (B, N) and optional token types.
/// </summary>
public sealed record Batch(Tensor Inputs, Tensor? AttentionMask = null, Tensor? TokenTypeIds = null, Tensor? Labels = null) : IDisposable
{
    public long Size => Inputs.shape[0];

    public Batch To(Device device) => new(Inputs.to(device), AttentionMask?.to(device), TokenTypeIds?.to(device), Labels?.to(device));

    public void Dispose()
    {
        Inputs.Dispose();
        AttentionMask?.Dispose();
        TokenTypeIds?.Dispose();
        Labels?.Dispose();
    }
}
