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

    /// <summary>maps * factor; with <paramref name="attends"/>, also offers the one-step (maps * factor) v and counts its uses.</summary>
    private sealed class Scale(double factor, bool attends = false) : AttentionMapTransform(nameof(Scale))
    {
        public int Calls, Attends;
        public override Tensor forward(Tensor maps) { Calls++; return maps * factor; }
        public override Tensor? Attend(Tensor q, Tensor k, Tensor v, Tensor? additiveMask)
        {
            if (!attends) return null;
            Attends++;
            using var maps = MultiHeadAttention.AttentionMaps(q, k, additiveMask);
            return matmul(maps * factor, v);
        }
    }

    /// <summary>maps + constant.</summary>
    private sealed class Shift(double constant) : AttentionMapTransform(nameof(Shift))
    {
        public override Tensor forward(Tensor maps) => maps + constant;
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

    [Fact]
    public void Map_transforms_apply_in_the_order_they_were_attached()
    {
        using var scope = NewDisposeScope();
        var (scaleThenShift, x, mask) = Setup(5, ScalarType.Float64);
        scaleThenShift.AttachMapTransform(new Scale(2.0), "scale");
        scaleThenShift.AttachMapTransform(new Shift(0.25), "shift");
        Assert.Equal(new[] { "scale", "shift" }, scaleThenShift.NamedMapTransforms.Select(t => t.Name).ToArray());
        Assert.IsType<Shift>(scaleThenShift.MapTransforms[1]);
        var (shiftThenScale, _, _) = Setup(5, ScalarType.Float64);
        shiftThenScale.AttachMapTransform(new Shift(0.25), "shift");
        shiftThenScale.AttachMapTransform(new Scale(2.0), "scale");

        // By hand: 2 F + 0.25 in one order, 2 (F + 0.25) = 2 F + 0.5 in the other; padded keys get the constant too.
        var first = AttentionReference.Output(scaleThenShift, x, keep: mask, maps: f => 2.0 * f + 0.25);
        var second = AttentionReference.Output(shiftThenScale, x, keep: mask, maps: f => 2.0 * f + 0.5);
        Assert.True(MaxAbsDiff(scaleThenShift.forward(x, keyPaddingMask: mask), first) <= 1e-10);
        Assert.True(MaxAbsDiff(shiftThenScale.forward(x, keyPaddingMask: mask), second) <= 1e-10);
        Assert.True(MaxAbsDiff(first, second) > 1e-2, "the two orders must give different outputs for the test to mean anything");

        // A disabled transform is skipped; the rest keep their order.
        scaleThenShift.MapTransforms[0].Enabled = false;
        var shiftOnly = AttentionReference.Output(scaleThenShift, x, keep: mask, maps: f => f + 0.25);
        Assert.True(MaxAbsDiff(scaleThenShift.forward(x, keyPaddingMask: mask), shiftOnly) <= 1e-10);
    }

    [Fact]
    public void A_lone_transform_attends_in_one_step_and_agrees_with_the_explicit_path()
    {
        using var scope = NewDisposeScope();
        var (alone, x, mask) = Setup(6, ScalarType.Float64);
        var scale = new Scale(1.5, attends: true);
        alone.AttachMapTransform(scale, "scale");
        var oneStep = alone.forward(x, keyPaddingMask: mask);
        Assert.Equal((1, 0), (scale.Attends, scale.Calls));

        // A second enabled transform forces the explicit maps; a disabled one does not.
        var (pair, _, _) = Setup(6, ScalarType.Float64);
        var pairScale = new Scale(1.5, attends: true);
        pair.AttachMapTransform(pairScale, "scale");
        var identity = new IdentityTransform();
        pair.AttachMapTransform(identity, "identity");
        var explicitOut = pair.forward(x, keyPaddingMask: mask);
        Assert.Equal((0, 1), (pairScale.Attends, pairScale.Calls));
        identity.Enabled = false;
        Assert.True(MaxAbsDiff(pair.forward(x, keyPaddingMask: mask), explicitOut) <= 1e-12);
        Assert.Equal((1, 1), (pairScale.Attends, pairScale.Calls));

        var reference = AttentionReference.Output(alone, x, keep: mask, maps: f => 1.5 * f);
        Assert.True(MaxAbsDiff(oneStep, reference) <= 1e-10);
        Assert.True(MaxAbsDiff(explicitOut, reference) <= 1e-10);
    }

    [Fact]
    public void Coeff_mixing_recomputed_in_one_step_and_through_explicit_maps_agree_in_outputs_and_gradients()
    {
        using var scope = NewDisposeScope();
        (Tensor output, Tensor alphaGrad, Tensor xGrad) Run(bool recompute, bool withIdentity)
        {
            var (attn, x, mask) = Setup(7, ScalarType.Float64);
            var mixing = new CoeffMixing(4, new CoeffConfig());
            mixing.to(ScalarType.Float64);
            torch.manual_seed(70);
            mixing.SetAlpha(randn(4, 4, ScalarType.Float64) * 0.5);
            mixing.RecomputeMaps = recompute;
            attn.AttachMapTransform(mixing);
            if (withIdentity) attn.AttachMapTransform(new IdentityTransform(), "identity");
            x.requires_grad_(true);
            var y = attn.forward(x, keyPaddingMask: mask, causal: true);
            y.pow(2).sum().backward();
            return (y.detach(), mixing.alpha.grad!.clone(), x.grad!.clone());
        }
        var oneStep = Run(recompute: true, withIdentity: false);
        foreach (var other in new[] { Run(recompute: false, withIdentity: false), Run(recompute: true, withIdentity: true) })
        {
            Assert.True(MaxAbsDiff(oneStep.output, other.output) <= 1e-12);
            Assert.True(MaxAbsDiff(oneStep.alphaGrad, other.alphaGrad) <= 1e-10, $"alpha gradients differ by {MaxAbsDiff(oneStep.alphaGrad, other.alphaGrad):E2}");
            Assert.True(MaxAbsDiff(oneStep.xGrad, other.xGrad) <= 1e-10, $"input gradients differ by {MaxAbsDiff(oneStep.xGrad, other.xGrad):E2}");
        }
    }

    [Fact]
    public void Attaching_refuses_a_taken_name_and_a_transform_already_attached()
    {
        using var scope = NewDisposeScope();
        var attn = new MultiHeadAttention(16, 4);
        var mixing = new CoeffMixing(4, new CoeffConfig());
        attn.AttachMapTransform(mixing);
        attn.AttachMapTransform(new CoeffMixing(4, new CoeffConfig()), "second");
        Assert.Contains("'mixing'", Assert.Throws<InvalidOperationException>(() => attn.AttachMapTransform(new IdentityTransform())).Message);
        Assert.Contains("'query'", Assert.Throws<InvalidOperationException>(() => attn.AttachMapTransform(new IdentityTransform(), "query")).Message);
        Assert.Contains("already attached", Assert.Throws<InvalidOperationException>(() => attn.AttachMapTransform(mixing, "third")).Message);
        Assert.Throws<ArgumentException>(() => attn.AttachMapTransform(new IdentityTransform(), "a.b"));
        // Each transform's parameters sit under its own name: Coeff-Tuning's key is unchanged.
        var keys = attn.state_dict().Keys.Where(k => k.EndsWith(".alpha")).ToArray();
        Assert.Equal(new[] { "mixing.alpha", "second.alpha" }, keys);
        Assert.Equal(2, attn.MapTransforms.Count);
    }
}
