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
    /// <summary>FLOPs of one training step per example: the forward pass and the backward pass as autograd runs it.</summary>
    public sealed record StepFlops(double Forward, double Backward)
    {
        public double Total => Forward + Backward;
    }

    /// <summary>
    /// The FLOPs of one training step of <paramref name="model"/> per example, counted on a forward pass with autograd on:
    /// a Linear's backward computes its input's gradient only when the input requires one and its weight's only when the
    /// weight is trained (F each, for a forward of F); an attention layer's two N x N products do the same for each
    /// operand; each map transform reports its own (<see cref="AttentionMapTransform.BackwardFlops"/>), and a transform
    /// that remakes the maps in the backward pass pays the scores' product and its own forward again. A frozen model
    /// under a trained head has almost no backward pass; full fine-tuning's is twice its forward.
    /// </summary>
    public static StepFlops TrainingStepFlops(TransformerClassifier model, Batch oneExample)
    {
        double forward = 0, backward = 0;
        var removers = new List<Action>();
        static bool Trained(nn.Module m) => m.parameters().Any(p => p.requires_grad);
        foreach (var (_, m) in model.named_modules())
        {
            if (m is Linear linear)
            {
                var h = linear.register_forward_hook((mod, x, y) =>
                {
                    double f = 2.0 * x.numel() / x.shape[^1] * linear.weight!.shape[1] * linear.weight!.shape[0];
                    forward += f;
                    backward += (x.requires_grad ? f : 0) + (linear.weight!.requires_grad ? f : 0);
                    return y;
                });
                removers.Add(() => h.remove());
            }
            else if (m is Conv2d conv)
            {
                var h = conv.register_forward_hook((mod, x, y) =>
                {
                    var w = conv.weight!;
                    double f = 2.0 * y.numel() * w.shape[1] * w.shape[2] * w.shape[3];
                    forward += f;
                    backward += (x.requires_grad ? f : 0) + (w.requires_grad ? f : 0);
                    return y;
                });
                removers.Add(() => h.remove());
            }
            else if (m is MultiHeadAttention attn)
            {
                var h = attn.register_forward_hook((mod, input, y) =>
                {
                    var src = input.Context ?? input.X;
                    long b = input.X.shape[0], nq = input.X.shape[1], nk = src.shape[1];
                    bool q = input.X.requires_grad || Trained(attn.query), k = src.requires_grad || Trained(attn.key), v = src.requires_grad || Trained(attn.value);
                    var transforms = attn.MapTransforms.Where(t => t.Enabled).ToList();
                    bool maps = q || k, mixed = maps || transforms.Any(Trained);
                    double product = 2.0 * nq * nk * attn.Dim * b;          // Q K^T, or F V, over all heads
                    forward += 2 * product;
                    backward += (q ? product : 0) + (k ? product : 0) + (mixed ? product : 0) + (v ? product : 0);
                    foreach (var t in transforms)
                    {
                        forward += b * t.ForwardFlops(attn.Heads, nq, nk);
                        backward += b * t.BackwardFlops(attn.Heads, nq, nk, maps);
                    }
                    if (transforms.Count == 1 && transforms[0].RecomputesInBackward && (mixed || v))
                        backward += product + b * transforms[0].ForwardFlops(attn.Heads, nq, nk);
                    return y;
                });
                removers.Add(() => h.remove());
            }
        }
        bool wasTraining = model.training;
        try
        {
            using var scope = NewDisposeScope();
            // Training mode with autograd on, as in a step.
            model.train();
            model.forward(oneExample);
        }
        finally
        {
            foreach (var remove in removers) remove();
            model.train(wasTraining);
        }
        return new StepFlops(forward / oneExample.Size, backward / oneExample.Size);
    }

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
