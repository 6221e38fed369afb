using CoeffTune.Attention;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Attention;

/// <summary>
/// Multi-head attention written out from a layer's weights with plain tensor operations, sharing no code with
/// <see cref="MultiHeadAttention"/>: a reference for its outputs.
/// </summary>
internal static class AttentionReference
{
    /// <summary>
    /// x: (B, Nq, D); context: (B, Nk, Dc) or null; keep: (B, Nk), true on real keys; causal: query i sees keys up to
    /// Nk - Nq + i. <paramref name="maps"/> changes the post-softmax maps (B, H, Nq, Nk) before the product with V.
    /// </summary>
    public static Tensor Output(MultiHeadAttention layer, Tensor x, Tensor? context = null, Tensor? keep = null, bool causal = false,
        Func<Tensor, Tensor>? maps = null)
    {
        using var scope = NewDisposeScope();
        var src = context ?? x;
        long b = x.shape[0], nq = x.shape[1], nk = src.shape[1], h = layer.Heads, dh = layer.HeadDim;
        Tensor Project(TorchSharp.Modules.Linear l, Tensor t) => t.matmul(l.weight!.t()) + l.bias!;
        Tensor Heads(Tensor t, long n) => t.reshape(b, n, h, dh).permute(0, 2, 1, 3);
        var q = Heads(Project(layer.query, x), nq);
        var k = Heads(Project(layer.key, src), nk);
        var v = Heads(Project(layer.value, src), nk);
        var scores = q.matmul(k.permute(0, 1, 3, 2)) / Math.Sqrt(dh);
        var blocked = zeros(new long[] { b, 1, nq, nk }, ScalarType.Bool);
        if (keep is not null) blocked = blocked.logical_or(keep.to_type(ScalarType.Bool).logical_not().reshape(b, 1, 1, nk));
        if (causal)
        {
            var row = arange(nq).reshape(nq, 1) + (nk - nq);
            var col = arange(nk).reshape(1, nk);
            blocked = blocked.logical_or(col.gt(row));
        }
        var f = scores.masked_fill(blocked, double.NegativeInfinity).softmax(-1);
        if (maps is not null) f = maps(f);
        var heads = f.matmul(v).permute(0, 2, 1, 3).reshape(b, nq, h * dh);
        return Project(layer.output, heads).MoveToOuterDisposeScope();
    }

    /// <summary>Coeff-Tuning's residual mixing written out: Fhat^h = sum_i (I + alpha)[h, i] F^i.</summary>
    public static Func<Tensor, Tensor> ResidualMixing(Tensor alpha) => f =>
    {
        var alphaPrime = eye(alpha.shape[0], dtype: f.dtype) + alpha.detach().to_type(f.dtype);
        return einsum("hi,bimn->bhmn", alphaPrime, f);
    };
}
