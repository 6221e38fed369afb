using CoeffTune.Diffusion;
using CoeffTune.Methods;
using CoeffTune.Methods.Coeff;
using CoeffTune.Models.Dit;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Diffusion;

public sealed class DdimSamplerTests
{
    [Fact]
    public void Deterministic_step_matches_a_value_worked_by_hand()
    {
        // a_t = 0.5, a_prev = 0.8, x_t = 0.5, eps = 0.2:
        // x0 = (0.5 - sqrt(0.5) 0.2) / sqrt(0.5) = 0.70710678 - 0.2 = 0.50710678
        // x_prev = sqrt(0.8) 0.50710678 + sqrt(0.2) 0.2 = 0.45357636 + 0.08944272 = 0.54301908... (0.5430128129)
        using var xt = full(3, 0.5, ScalarType.Float64);
        using var eps = full(3, 0.2, ScalarType.Float64);
        using var next = DdimSampler.Step(xt, eps, 0.5, 0.8, eta: 0, noise: null, clipDenoised: false);
        Assert.All(TestUtil.Values(next), v => Assert.Equal(0.5430128129336842, v, 12));
    }

    [Fact]
    public void Stochastic_step_adds_sigma_times_the_given_noise()
    {
        // sigma(eta = 1) = sqrt(0.2 / 0.5) sqrt(1 - 0.5 / 0.8) = 0.63245553 * 0.61237244 = 0.38729833
        // x_prev = sqrt(0.8) x0 + sqrt(1 - 0.8 - sigma^2) eps + sigma z = 0.45357636 + sqrt(0.05) 0.2 + 0.38729833 * 1
        Assert.Equal(0.3872983346207416, DdimSampler.Sigma(0.5, 0.8, 1.0), 12);
        using var xt = full(2, 0.5, ScalarType.Float64);
        using var eps = full(2, 0.2, ScalarType.Float64);
        using var one = ones(2, ScalarType.Float64);
        using var next = DdimSampler.Step(xt, eps, 0.5, 0.8, eta: 1.0, noise: one, clipDenoised: false);
        Assert.All(TestUtil.Values(next), v => Assert.Equal(0.88558978800443, v, 12));
        // eta = 0.5 halves sigma; with z = -1 the noise term is subtracted.
        using var minus = -one;
        using var half = DdimSampler.Step(xt, eps, 0.5, 0.8, eta: 0.5, noise: minus, clipDenoised: false);
        Assert.All(TestUtil.Values(half), v => Assert.Equal(0.34054350400630723, v, 12));
        Assert.Throws<ArgumentException>(() => DdimSampler.Step(xt, eps, 0.5, 0.8, eta: 1.0, noise: null, clipDenoised: false));
    }

    [Fact]
    public void Clipping_bounds_the_predicted_clean_image()
    {
        // x0 = 2 / sqrt(0.5) = 2.83 is clamped to 1; with eps = 0 the step is sqrt(a_prev) * 1.
        using var xt = full(1, 2.0, ScalarType.Float64);
        using var eps = zeros(1, ScalarType.Float64);
        using var next = DdimSampler.Step(xt, eps, 0.5, 0.8, 0, null, clipDenoised: true);
        Assert.Equal(Math.Sqrt(0.8), TestUtil.Values(next)[0], 12);
    }

    [Fact]
    public void Guidance_extrapolates_from_the_unconditional_prediction()
    {
        using var u = tensor(new[] { 1.0, -2.0 });
        using var c = tensor(new[] { 3.0, 0.0 });
        using var g = DdimSampler.Guide(u, c, 2.5);
        Assert.Equal(new[] { 6.0, 3.0 }, TestUtil.Values(g));           // u + 2.5 (c - u)
        using var one = DdimSampler.Guide(u, c, 1.0);
        Assert.Equal(TestUtil.Values(c), TestUtil.Values(one));
        using var zero = DdimSampler.Guide(u, c, 0.0);
        Assert.Equal(TestUtil.Values(u), TestUtil.Values(zero));
    }

    [Fact]
    public void Timesteps_are_evenly_spaced_and_descending()
    {
        Assert.Equal(new[] { 750, 500, 250, 0 }, DdimSampler.Timesteps(1000, 4));
        Assert.Equal(Enumerable.Range(0, 10).Reverse().ToArray(), DdimSampler.Timesteps(10, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => DdimSampler.Timesteps(1000, 1001));
    }

    private static (TextStates Prompts, TextStates Empty) Prompts(int n)
    {
        var encoder = new WordHashEncoder();
        var captions = Enumerable.Range(0, n).Select(i => i % 2 == 0 ? "a photo of a sneaker" : "a rotated photo of sks").ToList();
        return (encoder.Encode(captions), encoder.Encode([""]));
    }

    private static Tensor Sample(DiffusionTransformer model, long seed, SamplerOptions? o = null)
    {
        var (prompts, empty) = Prompts(3);
        using (prompts) using (empty)
            return DdimSampler.Sample(model, NoiseSchedule.Linear(), prompts, empty, seed, o ?? new SamplerOptions { Steps = 8, Eta = 0.5, Guidance = 3 });
    }

    [Fact]
    public void Same_seed_gives_the_same_images_and_another_seed_others()
    {
        using var model = TinyDiffusion.Trained(seed: 1);
        using var a = Sample(model, 5);
        using var b = Sample(model, 5);
        using var c = Sample(model, 6);
        Assert.Equal(new long[] { 3, 1, 8, 8 }, a.shape);
        Assert.Equal(TestUtil.Values(a), TestUtil.Values(b));
        Assert.True(TestUtil.MaxAbsDiff(a, c) > 1e-2);
        Assert.True(a.min().ToDouble() >= -1 && a.max().ToDouble() <= 1);
    }

    [Fact]
    public void Coeff_tuning_with_alpha_zero_leaves_samples_unchanged_and_alpha_changes_them()
    {
        // In float64, so that the comparison sees the method and not float32 rounding amplified by guidance.
        using var model = TinyDiffusion.Trained(seed: 2);
        model.to(ScalarType.Float64);
        using var before = Sample(model, 11);
        var peft = PeftModel.Wrap(model, DiffusionTransformer.Architecture, [], new CoeffConfig());
        Assert.Equal(4, peft.Method<CoeffMethod>().Layers.Count);     // 2 blocks x (self + cross)
        using var attached = Sample(model, 11);
        // The fused kernel and the explicit maps round differently; nothing else differs.
        Assert.True(TestUtil.MaxAbsDiff(before, attached) < 1e-6, $"max difference {TestUtil.MaxAbsDiff(before, attached)}");
        var coeff = peft.Method<CoeffMethod>();
        for (int i = 0; i < coeff.Layers.Count; i++)
            coeff.SetAlpha(i, eye(4, 4, ScalarType.Float64) * -0.5 + full(new long[] { 4, 4 }, 0.3, ScalarType.Float64));
        using var mixed = Sample(model, 11);
        Assert.True(TestUtil.MaxAbsDiff(before, mixed) > 1e-2);
    }

    [Fact]
    public void Without_guidance_only_the_conditional_prediction_is_used()
    {
        // Scale 1 runs the prompts alone; it must agree with the guided path's formula at w = 1.
        using var model = TinyDiffusion.Trained(seed: 3);
        using var alone = Sample(model, 4, new SamplerOptions { Steps = 5, Guidance = 1.0 });
        using var guided = Sample(model, 4, new SamplerOptions { Steps = 5, Guidance = 1.0 + 1e-9 });
        Assert.True(TestUtil.MaxAbsDiff(alone, guided) < 1e-5);
    }

    [Fact]
    public void Bad_sampler_options_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new SamplerOptions { Steps = 0 }.Validate(1000));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SamplerOptions { Eta = -1 }.Validate(1000));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SamplerOptions { Guidance = double.NaN }.Validate(1000));
    }
}
