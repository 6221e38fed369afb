using CoeffTune.Attention;
using CoeffTune.Methods.Coeff;
using TorchSharp;
using static TorchSharp.torch;
using static CoeffTune.Tests.TestUtil;

namespace CoeffTune.Tests.Attention;

public class MultiHeadAttentionTests
{
    /// <summary>Returns the maps unchanged: forces the explicit (materialised) path.</summary>
    private sealed class IdentityTransform() : AttentionMapTransform(nameof(IdentityTransform))
    {
        public override Tensor forward(Tensor maps) => maps.alias();
    }

    /// <summary>Records the maps after an inner transform, for inspection.</summary>
    private sealed class Recording(AttentionMapTransform inner) : AttentionMapTransform(nameof(Recording))
    {
        public Tensor? Last;
        public override Tensor forward(Tensor maps)
        {
            var r = inner.call(maps);
            Last?.Dispose();
            Last = r.detach().clone().DetachFromDisposeScope();
            return r;
        }
    }

    private static (MultiHeadAttention attn, Tensor x, Tensor mask) Setup(int seed, ScalarType dtype = ScalarType.Float32)
    {
        torch.manual_seed(seed);
        var attn = new MultiHeadAttention(32, 4);
        attn.to(dtype).eval();
        var x = randn(new long[] { 3, 7, 32 }, dtype);
        var mask = ones(3, 7, ScalarType.Int64);
        mask[1, TensorIndex.Slice(5)] = 0;
        mask[2, TensorIndex.Slice(3)] = 0;
        return (attn, x, mask);
    }

    [Fact]
    public void Alpha_zero_reproduces_the_explicit_and_the_fused_path()
    {
        using var scope = NewDisposeScope();
        var (fusedAttn, x, mask) = Setup(1);
        var fused = fusedAttn.forward(x, keyPaddingMask: mask);

        var (explicitAttn, _, _) = Setup(1);
        explicitAttn.AttachMapTransform(new IdentityTransform());
        var explicitOut = explicitAttn.forward(x, keyPaddingMask: mask);

        var (mixedAttn, _, _) = Setup(1);
        CoeffTuning.Apply(mixedAttn);
        var mixed = mixedAttn.forward(x, keyPaddingMask: mask);

        Assert.True(MaxAbsDiff(fused, explicitOut) <= 1e-6, $"fused vs explicit {MaxAbsDiff(fused, explicitOut)}");
        Assert.True(MaxAbsDiff(fused, mixed) <= 1e-6, $"fused vs alpha=0 {MaxAbsDiff(fused, mixed)}");
        Assert.True(MaxAbsDiff(explicitOut, mixed) <= 1e-6);
    }

    [Fact]
    public void Causal_mask_gives_future_keys_zero_weight()
    {
        using var scope = NewDisposeScope();
        var (attn, x, _) = Setup(2);
        var rec = new Recording(new IdentityTransform());
        attn.AttachMapTransform(rec);
        var outCausal = attn.forward(x, causal: true);
        var maps = rec.Last!;
        var upper = ones(7, 7, ScalarType.Bool).triu(1);
        Assert.Equal(0.0, maps.masked_select(upper.expand_as(maps)).abs().max().ToDouble());
        // The first query sees only itself: its output does not change when later tokens change.
        var x2 = x.clone();
        x2[TensorIndex.Colon, TensorIndex.Slice(1)] = randn(3, 6, 32);
        var out2 = attn.forward(x2, causal: true);
        Assert.True(MaxAbsDiff(outCausal.select(1, 0), out2.select(1, 0)) <= 1e-6);
        // And the fused path agrees.
        var (fusedAttn, _, _) = Setup(2);
        Assert.True(MaxAbsDiff(fusedAttn.forward(x, causal: true), outCausal) <= 1e-6);
    }

    [Fact]
    public void Cross_attention_with_padding_and_mixing_gives_masked_keys_zero_weight_in_every_mixed_map()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(3);
        var attn = new MultiHeadAttention(32, 4, contextDim: 24);
        attn.eval();
        var mixing = CoeffTuning.Apply(attn).Values.Single();
        using (no_grad()) mixing.alpha.copy_(randn(4, 4));        // a non-trivial mixing with negative entries
        var x = randn(2, 5, 32);                                   // Nq = 5
        var ctx = randn(2, 9, 24);                                 // Nk = 9
        var mask = ones(2, 9, ScalarType.Bool);
        mask[0, TensorIndex.Slice(6)] = false;
        var y = attn.forward(x, ctx, mask);
        Assert.Equal(new long[] { 2, 5, 32 }, y.shape);

        // Changing the padded keys must not change anything.
        var ctx2 = ctx.clone();
        ctx2[0, TensorIndex.Slice(6)] = randn(3, 24) * 100;
        var y2 = attn.forward(x, ctx2, mask);
        Assert.True(MaxAbsDiff(y, y2) <= 1e-5, $"padded keys leaked: {MaxAbsDiff(y, y2)}");

        // The mixed maps themselves: zero in every padded column, for every head.
        var q = attn.query.call(x).view(2, 5, 4, 8).transpose(1, 2);
        var k = attn.key.call(ctx).view(2, 9, 4, 8).transpose(1, 2);
        var maps = MultiHeadAttention.AttentionMaps(q, k, MultiHeadAttention.AdditiveMask(mask, false, 5, 9, ScalarType.Float32, CPU));
        var mixed = mixing.call(maps);
        Assert.Equal(0.0, mixed[0, TensorIndex.Colon, TensorIndex.Colon, TensorIndex.Slice(6)].abs().max().ToDouble());
        Assert.True(mixed.min().ToDouble() < 0, "a random alpha should produce negative entries");
    }

    /// <summary>
    /// Attention dropout with a map transform attached: in training it drops entries of the mixed maps and scales
    /// the kept ones by 1 / (1 - p), so the mean over many draws is the evaluation output; evaluation applies none.
    /// </summary>
    [Fact]
    public void Attention_dropout_applies_to_the_mixed_maps_in_training_only()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(4);
        var attn = new MultiHeadAttention(16, 4, attentionDropout: 0.5);
        var mixing = new CoeffMixing(4, new CoeffConfig());
        using (no_grad()) mixing.alpha.copy_(randn(4, 4) * 0.3);
        attn.AttachMapTransform(mixing);
        var x = randn(2, 6, 16);
        attn.eval();
        Tensor evaluation;
        using (no_grad()) evaluation = attn.forward(x);
        // Without dropout the same module gives the same output: evaluation applies none.
        var plain = new MultiHeadAttention(16, 4);
        plain.load_state_dict(attn.state_dict(), strict: false);
        var plainMixing = new CoeffMixing(4, new CoeffConfig());
        using (no_grad()) plainMixing.alpha.copy_(mixing.alpha);
        plain.AttachMapTransform(plainMixing);
        plain.eval();
        using (no_grad()) Assert.True(MaxAbsDiff(plain.forward(x), evaluation) < 1e-6);

        attn.train();
        mixing.eval();   // the coefficients' own dropout off: only attention dropout acts
        Tensor first, sum = zeros_like(evaluation);
        using (no_grad())
        {
            first = attn.forward(x);
            sum.add_(first);
            for (int i = 1; i < 2000; i++) sum.add_(attn.forward(x));
        }
        Assert.True(MaxAbsDiff(first, evaluation) > 1e-2, "training applies dropout");
        // 2,000 draws: the mean is within a few percent of the evaluation output's scale.
        double scale = evaluation.abs().mean().ToDouble();
        Assert.True(MaxAbsDiff(sum / 2000, evaluation) < 0.1 * scale, $"mean of training outputs off by {MaxAbsDiff(sum / 2000, evaluation):G3} (scale {scale:G3})");
    }

    [Fact]
    public void A_forward_hook_on_an_attention_layer_of_bert_sees_its_call_and_a_replaced_output_reaches_the_logits()
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Bert(5);
        var batch = TinyModels.TextBatch();
        var attention = model.layers[0].attention;
        var kept = new List<Tensor>();
        // Hooks run inside the layer's caller's dispose scope: what they keep must leave it.
        Tensor Keep(Tensor t) { var c = t.detach().clone().DetachFromDisposeScope(); kept.Add(c); return c; }
        Tensor? seenX = null, seenMask = null, seenOutput = null;
        var pre = attention.register_forward_pre_hook((_, input) =>
        {
            seenX = Keep(input.X);
            seenMask = input.KeyPaddingMask is { } m ? Keep(m) : null;
            return input;
        });
        var post = attention.register_forward_hook((_, _, output) => { seenOutput = Keep(output); return output; });
        var logits = model.forward(batch);
        pre.remove();
        post.remove();

        // What the hooks saw: the embeddings, the batch's mask, and the layer's own output on them.
        var embedded = model.embeddings.forward(batch.Inputs, batch.TokenTypeIds);
        Assert.Equal(0.0, MaxAbsDiff(seenX!, embedded));
        Assert.Equal(0.0, MaxAbsDiff(seenMask!, batch.AttentionMask!));
        var direct = attention.forward(new AttentionInput(embedded, KeyPaddingMask: batch.AttentionMask));
        Assert.Equal(0.0, MaxAbsDiff(seenOutput!, direct));

        // A hook that replaces the output with zeros: the logits are those of the same model whose attention
        // output projection is zero (so that layer's attention adds nothing), and differ from the original.
        var zeroing = attention.register_forward_hook((_, _, output) => zeros_like(output));
        var replaced = model.forward(batch);
        zeroing.remove();
        var reference = TinyModels.Bert(5);
        using (no_grad())
        {
            reference.layers[0].attention.output.weight!.zero_();
            reference.layers[0].attention.output.bias!.zero_();
        }
        Assert.True(MaxAbsDiff(replaced, reference.forward(batch)) <= 1e-6, $"hooked vs zeroed projection {MaxAbsDiff(replaced, reference.forward(batch)):E2}");
        Assert.True(MaxAbsDiff(replaced, logits) > 1e-3, "replacing the attention output must change the logits");
        // Removed hooks act no more.
        Assert.Equal(0.0, MaxAbsDiff(model.forward(batch), logits));
        foreach (var t in kept) t.Dispose();
    }
}
