using CoeffTune.Attention;
using CoeffTune.Methods.Coeff;
using CoeffTune.Models;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Models;

public class FlopCounterTests
{
    /// <summary>Reorders nothing and computes nothing: adds no FLOPs of its own.</summary>
    private sealed class Passthrough() : AttentionMapTransform(nameof(Passthrough))
    {
        public override Tensor forward(Tensor maps) => maps.alias();
    }

    [Fact]
    public void Each_enabled_map_transform_adds_its_own_cost_per_attention_layer()
    {
        using var scope = NewDisposeScope();
        var batch = TinyModels.TextBatch();
        using var one = new Batch(batch.Inputs[..1], batch.AttentionMask![..1]);
        const long n = 10, heads = 4, layers = 2;
        double mixing = 2.0 * heads * heads * n * n;   // (H, H) @ (H, N*N), one multiply-add counted as two
        double Count(Action<BertClassifier> adapt)
        {
            var model = TinyModels.Bert();
            adapt(model);
            return FlopCounter.ForwardFlops(model, one, n);
        }
        double plain = Count(_ => { });
        Assert.Equal(layers * mixing, Count(m => CoeffTuning.Apply(m)) - plain, 6);
        Assert.Equal(2 * layers * mixing, Count(m =>
        {
            foreach (var a in m.modules().OfType<MultiHeadAttention>())
            {
                a.AttachMapTransform(new CoeffMixing(4, new CoeffConfig()));
                a.AttachMapTransform(new CoeffMixing(4, new CoeffConfig()), "second");
                a.AttachMapTransform(new Passthrough(), "passthrough");
            }
        }) - plain, 6);
        Assert.Equal(layers * mixing, Count(m =>
        {
            foreach (var a in m.modules().OfType<MultiHeadAttention>())
            {
                a.AttachMapTransform(new CoeffMixing(4, new CoeffConfig()));
                a.AttachMapTransform(new CoeffMixing(4, new CoeffConfig()) { Enabled = false }, "second");
            }
        }) - plain, 6);
    }

    /// <summary>
    /// The tiny BERT (width 32, 2 layers, 4 heads, MLP 64, 3 classes) on one 10-token example, counted by hand.
    /// Forward per layer: q, k, v, o 4 x 2*32*32*10 = 81,920; MLP 2 x 2*32*64*10 = 81,920; Q K^T and F V
    /// 2 x 2*10*10*32 = 12,800; two layers 353,280; head 2*32*3 = 192: 353,472.
    /// </summary>
    [Fact]
    public void A_training_steps_backward_counts_only_the_gradients_autograd_computes()
    {
        using var scope = NewDisposeScope();
        var batch = TinyModels.TextBatch();
        using var one = new Batch(batch.Inputs[..1], batch.AttentionMask![..1]);
        FlopCounter.StepFlops Count(string recipe)
        {
            var model = TinyModels.Bert();
            CoeffTune.Methods.PeftModel.Wrap(model, recipe);
            return FlopCounter.TrainingStepFlops(model, one);
        }

        // A linear probe: the head's weight gradient alone (its input needs none).
        var linear = Count("linear");
        Assert.Equal(353_472, linear.Forward);
        Assert.Equal(2 * 32 * 3, linear.Backward);

        // Full fine-tuning: every product's two operands need gradients, twice the forward.
        var full = Count("full");
        Assert.Equal(353_472, full.Forward);
        Assert.Equal(2 * 353_472, full.Backward);

        // Coeff alone (maps recomputed in the backward pass). Mixing is 2*16*100 = 3,200 per layer.
        // Layer 0 (frozen q, k, v; its input needs no gradient): dF' through F V 6,400; d alpha 3,200; the recompute of
        // Q K^T and the mixing 9,600; input gradients of o and the MLP 20,480 + 2 x 40,960: 121,600.
        // Layer 1 (input needs gradients): q, k, v 61,440; both products' two operands 25,600; d alpha and dF 6,400;
        // recompute 9,600; o and the MLP 102,400: 205,440. Head: input and weight, 384.
        var coeff = Count("coeff");
        Assert.Equal(353_472 + 2 * 3_200, coeff.Forward);
        Assert.Equal(121_600 + 205_440 + 384, coeff.Backward);
    }
}
