using CoeffTune.Attention;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CoeffTune.Models;

/// <summary>
/// Forward FLOPs of one example (a multiply-add counts as two): every Linear and Conv2d actually called
/// (adapters' own Linears included) is measured by a forward hook, and each attention layer adds its
/// two N x N products, plus what each enabled map transform reports (<see cref="AttentionMapTransform.ForwardFlops"/>:
/// Coeff-Tuning's head mixing is 2 H^2 N^2). Norms, softmax and
/// activations are left out, as is usual.
/// </summary>
public static class FlopCounter
{
    public static double ForwardFlops(TransformerClassifier model, Batch oneExample, long sequenceLength)
    {
        double flops = 0;
        var removers = new List<Action>();
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
        long n = sequenceLength;
        foreach (var attn in model.modules().OfType<MultiHeadAttention>())
        {
            flops += 2.0 * 2 * n * n * attn.Dim;                          // Q K^T and F V over all heads
            foreach (var transform in attn.MapTransforms.Where(t => t.Enabled)) flops += transform.ForwardFlops(attn.Heads, n, n);
        }
        return flops / oneExample.Size;
    }
}
