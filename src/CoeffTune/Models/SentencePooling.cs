using static TorchSharp.torch;

namespace CoeffTune.Models;

/// <summary>
/// sentence-transformers' pooling modes over token states (B, N, D) with an attention mask (B, N) of 1 on
/// real tokens. As there, a prompt's tokens can be left out of the mask-based modes: the first
/// <c>promptLength</c> positions ([CLS] and the prompt) are then masked out before pooling.
/// </summary>
public static class SentencePooling
{
    /// <summary>The names sentence-transformers' 1_Pooling/config.json and the command line use.</summary>
    public static string Name(Pooling p) => p switch
    {
        Pooling.Mean => "mean", Pooling.Cls => "cls", Pooling.Max => "max", Pooling.MeanSqrtLen => "mean_sqrt_len_tokens",
        Pooling.LastToken => "lasttoken", Pooling.Pooler => "pooler", _ => throw new ArgumentOutOfRangeException(nameof(p)),
    };

    public static Pooling Parse(string name, string source) => name.Replace('-', '_').ToLowerInvariant() switch
    {
        "mean" or "mean_tokens" => Pooling.Mean,
        "cls" or "cls_token" => Pooling.Cls,
        "max" or "max_tokens" => Pooling.Max,
        "mean_sqrt_len_tokens" or "mean_sqrt_len" => Pooling.MeanSqrtLen,
        "lasttoken" or "last_token" => Pooling.LastToken,
        "pooler" => Pooling.Pooler,
        _ => throw new ArgumentException($"{source}: unknown pooling '{name}' (cls, mean, max, mean_sqrt_len_tokens, lasttoken, pooler)"),
    };

    public static Tensor Pool(Tensor hidden, Tensor? attentionMask, Pooling mode, int promptLength = 0)
    {
        using var scope = NewDisposeScope();
        long b = hidden.shape[0], n = hidden.shape[1];
        var mask = attentionMask is null ? ones(b, n, hidden.dtype, hidden.device) : attentionMask.to_type(hidden.dtype);
        if (promptLength > 0 && mode is Pooling.Mean or Pooling.Max or Pooling.MeanSqrtLen)
        {
            mask = mask.clone();
            mask[.., ..(int)Math.Min(promptLength, n)] = 0;
        }
        var m = mask.unsqueeze(-1);
        Tensor result = mode switch
        {
            Pooling.Cls => hidden.select(1, 0),
            Pooling.Mean => (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9),
            Pooling.MeanSqrtLen => (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9).sqrt(),
            // Padded positions set to a large negative, as sentence-transformers does, so they never win.
            Pooling.Max => hidden.masked_fill(m.eq(0), -1e9).amax(new long[] { 1 }),
            // The last real token of each row (right padding: at index count - 1).
            Pooling.LastToken => hidden.gather(1, (mask.sum(1).to_type(ScalarType.Int64) - 1).clamp_min(0)
                .view(b, 1, 1).expand(b, 1, hidden.shape[2])).squeeze(1),
            _ => throw new ArgumentException($"pooling {mode} needs the model's pooler weights; use the model's Pool"),
        };
        return result.MoveToOuterDisposeScope();
    }
}
