using CoeffTune.Methods;
using CoeffTune.Methods.Coeff;
using CoeffTune.Methods.Dora;
using CoeffTune.Methods.Lora;
using CoeffTune.Models.Dit;
using CoeffTune.Tests.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Models.Dit;

public sealed class DiffusionTransformerTests
{
    private static (Tensor X, Tensor T, Tensor Context, Tensor Mask) Inputs(long b = 3, int seed = 9)
    {
        var g = new Generator((ulong)seed);
        var x = randn(new long[] { b, 1, 8, 8 }, generator: g);
        var t = tensor(new long[] { 0, 500, 999 }.Take((int)b).ToArray());
        var context = randn(new long[] { b, 5, 12 }, generator: g);
        var mask = ones(b, 5, ScalarType.Int64);
        mask[0, TensorIndex.Slice(3)] = 0;
        return (x, t, context, mask);
    }

    [Fact]
    public void AdaLN_zero_model_predicts_zero_noise_at_initialisation()
    {
        using var model = TinyDiffusion.Fresh();
        var (x, t, c, m) = Inputs();
        using var eps = model.forward(x, t, c, m);
        Assert.Equal(new long[] { 3, 1, 8, 8 }, eps.shape);
        Assert.Equal(0.0, eps.abs().max().ToDouble());
        foreach (var block in model.blocks)
            Assert.Equal(0.0, block.adaLN_modulation.weight!.abs().sum().ToDouble());
    }

    [Fact]
    public void Prediction_depends_on_timestep_and_text_and_ignores_padded_tokens()
    {
        using var model = TinyDiffusion.Trained(seed: 4);
        var (x, t, c, m) = Inputs();
        using var eps = model.forward(x, t, c, m);
        using var otherT = model.forward(x, t + 1, c, m);
        using var otherText = model.forward(x, t, -c, m);
        Assert.True(TestUtil.MaxAbsDiff(eps, otherT) > 1e-4);
        Assert.True(TestUtil.MaxAbsDiff(eps, otherText) > 1e-4);
        // Text tokens carry their positions in their states (the encoder's), so the model is blind to their order.
        using var reordered = model.forward(x, t, c.flip(1), m.flip(1));
        Assert.True(TestUtil.MaxAbsDiff(eps, reordered) < 1e-5);
        // Row 0 has 3 real tokens: what the padding holds does not matter.
        using var padded = c.clone();
        padded[0, TensorIndex.Slice(3)] = 100;
        using var same = model.forward(x, t, padded, m);
        Assert.True(TestUtil.MaxAbsDiff(eps, same) < 1e-5);
    }

    [Fact]
    public void Unpatchify_inverts_patchify()
    {
        var shape = TinyDiffusion.Shape;
        using var images = rand(2, 1, 8, 8);
        using var tokens = DiffusionTransformer.Patchify(images, shape);
        Assert.Equal(new long[] { 2, 4, 16 }, tokens.shape);
        // Token 1 is the patch in row 0, column 1: pixels (0..3, 4..7), read row by row.
        Assert.Equal(TestUtil.Values(images[0, 0, TensorIndex.Slice(0, 4), TensorIndex.Slice(4, 8)]), TestUtil.Values(tokens[0, 1]));
        using var back = DiffusionTransformer.Unpatchify(tokens, shape);
        Assert.Equal(TestUtil.Values(images), TestUtil.Values(back));
    }

    [Fact]
    public void Timestep_features_are_cosines_then_sines()
    {
        using var t = tensor(new long[] { 0, 3 });
        using var f = TimestepEmbedder.Sinusoidal(t, 8);
        var v = TestUtil.Values(f);
        Assert.Equal(new[] { 1.0, 1, 1, 1, 0, 0, 0, 0 }, v.Take(8).ToArray());
        // Frequencies 10000^(-i/4): the first is 1, the second 0.1.
        Assert.Equal(Math.Cos(3), v[8], 1e-6);
        Assert.Equal(Math.Cos(0.3), v[9], 1e-6);
        Assert.Equal(Math.Sin(3), v[12], 1e-6);
        Assert.Equal(Math.Sin(0.3), v[13], 1e-6);
    }

    [Fact]
    public void Small28_has_49_tokens_and_the_advertised_size()
    {
        var c = DitConfig.Small28();
        Assert.Equal(49, c.Patches);
        using var model = new DiffusionTransformer(c);
        long n = model.parameters().Sum(p => p.numel());
        Assert.InRange(n, 1_500_000, 2_000_000);
    }

    [Fact]
    public void Coeff_attaches_to_self_and_cross_attention_selected_by_pattern()
    {
        int depth = TinyDiffusion.Shape.Depth, h = TinyDiffusion.Shape.Heads;
        using (var m = TinyDiffusion.Fresh())
        {
            var peft = PeftModel.Wrap(m, DiffusionTransformer.Architecture, [], new CoeffConfig());
            Assert.Equal(["blocks.0.attn", "blocks.0.cross_attn", "blocks.1.attn", "blocks.1.cross_attn"], peft.Method<CoeffMethod>().Targets);
            Assert.Equal(2 * depth * h * h, peft.Report().Total);
        }
        using (var m = TinyDiffusion.Fresh())
        {
            var peft = PeftModel.Wrap(m, DiffusionTransformer.Architecture, [], new CoeffConfig(targetModules: ["attn"]));
            Assert.Equal(["blocks.0.attn", "blocks.1.attn"], peft.Method<CoeffMethod>().Targets);
            Assert.Equal(depth * h * h, peft.Report().Total);
        }
        using (var m = TinyDiffusion.Fresh())
        {
            var peft = PeftModel.Wrap(m, DiffusionTransformer.Architecture, [], new CoeffConfig(targetModules: ["cross_attn"]));
            Assert.Equal(["blocks.0.cross_attn", "blocks.1.cross_attn"], peft.Method<CoeffMethod>().Targets);
        }
    }

    [Fact]
    public void Lora_and_dora_attach_to_query_and_value_of_both_attentions_with_coeff()
    {
        int depth = TinyDiffusion.Shape.Depth, h = TinyDiffusion.Shape.Heads, d = TinyDiffusion.Shape.Dim, r = 2;
        var expectedTargets = new[] { "attn.query", "attn.value", "cross_attn.query", "cross_attn.value" };
        using (var m = TinyDiffusion.Fresh())
        {
            var peft = PeftModel.Wrap(m, DiffusionTransformer.Architecture, [], new CoeffConfig(), new LoraConfig(rank: r));
            var lora = peft.Method<LoraMethod>();
            Assert.Equal(Enumerable.Range(0, depth).SelectMany(i => expectedTargets.Select(t => $"blocks.{i}.{t}")).Order(), lora.Targets.Order());
            var report = peft.Report();
            Assert.Equal(2L * depth * h * h, report.PerMethod.Single(p => p.Method == "coeff").Count);
            // Per layer: A (r x d) + B (d x r).
            Assert.Equal(4L * depth * (r * d + d * r), report.PerMethod.Single(p => p.Method == "lora").Count);
            Assert.Equal(0, report.Head);
        }
        using (var m = TinyDiffusion.Fresh())
        {
            var peft = PeftModel.Wrap(m, DiffusionTransformer.Architecture, [], new CoeffConfig(), new DoraConfig(new LoraConfig(rank: r)));
            // DoRA adds a magnitude per output row.
            Assert.Equal(4L * depth * (r * d + d * r + d), peft.Report().PerMethod.Single(p => p.Method == "dora").Count);
        }
    }

    [Fact]
    public void Alpha_of_self_and_cross_attention_receives_gradients()
    {
        using var model = TinyDiffusion.Trained(seed: 6);
        var peft = PeftModel.Wrap(model, DiffusionTransformer.Architecture, [], new CoeffConfig());
        model.train();
        var (x, t, c, m) = Inputs();
        using var loss = model.forward(x, t, c, m).square().mean();
        loss.backward();
        foreach (var (path, mixing) in peft.Method<CoeffMethod>().Layers)
            Assert.True(mixing.alpha.grad is { } g && g.abs().sum().ToDouble() > 0, $"{path}: no gradient on alpha");
        Assert.All(model.named_parameters().Where(p => !p.name.EndsWith(".alpha")), p => Assert.False(p.parameter.requires_grad));
    }
}
