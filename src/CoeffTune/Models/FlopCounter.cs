using CoeffTune.Attention;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CoeffTune.Models;

/// <summary>
/// Forward FLOPs of one example (a multiply-add counts as two): every Linear and Conv2d actually called
/// (adapters' own Linears included) is measured by a forward hook, and each attention layer adds its
/// two N x N products over the sequence it was called with (inserted prompt tokens included), plus what each enabled map transform reports (<see cref="AttentionMapTransform.ForwardFlops"/>:
/// Coeff-Tuning's head mixing is 2 H^2 N^2). Norms, softmax and
/// activations are left out, as is usual.
/// </summary>
public static class FlopCounter
{
    public static double ForwardFlops(TransformerClassifier model, Batch oneExample, long sequenceLength)
    {
        double flops = 0;
        var removers = new List<Action>();
        var called = new HashSet<MultiHeadAttention>(ReferenceEqualityComparer.Instance);
        foreach (var (_, m) in model.named_modules())
        {
            if (m is Linear linear)
            {
                var lh = linear.register_forward_hook((mod, x, y) =>
                {
                    flops += 2.0 * x.numel() / x.shape[^1] * linear.weight!.shape[1] * linear.weight!.shape[0];
                    return y;
                });
                removers.Add(() => lh.remove());
            }
            else if (m is MultiHeadAttention attention)
            {
                // The sequence each layer actually attends over: longer than the input when tokens are inserted (prompts).
                var ah = attention.register_forward_hook((mod, input, y) =>
                {
                    long b = input.X.shape[0], nq = input.X.shape[1], nk = input.Context?.shape[1] ?? nq;
                    flops += b * AttentionFlops(attention, nq, nk);
                    called.Add(attention);
                    return y;
                });
                removers.Add(() => ah.remove());
            }
            else if (m is Conv2d conv)
            {
                var ch = conv.register_forward_hook((mod, x, y) =>
                {
                    var w = conv.weight!;
                    flops += 2.0 * y.numel() * w.shape[1] * w.shape[2] * w.shape[3];
                    return y;
                });
                removers.Add(() => ch.remove());
            }
        }
        try
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            model.eval();
            model.forward(oneExample);
        }
        finally
        {
            foreach (var remove in removers) remove();
        }
        // A layer the forward did not reach (none in these models) is counted at the given sequence length.
        long n = sequenceLength;
        foreach (var attn in model.modules().OfType<MultiHeadAttention>().Where(a => !called.Contains(a)))
            flops += oneExample.Size * AttentionFlops(attn, n, n);
        return flops / oneExample.Size;
    }

    /// <summary>Q K^T and F V over all heads, plus what each enabled map transform adds, for one example.</summary>
    private static double AttentionFlops(MultiHeadAttention attn, long queries, long keys) =>
        2.0 * 2 * queries * keys * attn.Dim + attn.MapTransforms.Where(t => t.Enabled).Sum(t => t.ForwardFlops(attn.Heads, queries, keys));
}
