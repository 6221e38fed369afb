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
}
