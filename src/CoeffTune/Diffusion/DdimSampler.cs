using CoeffTune.Models.Dit;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Diffusion;

/// <summary>How images are sampled: DDIM steps, eta (0: deterministic DDIM, 1: DDPM-like), classifier-free guidance scale.</summary>
public sealed record SamplerOptions
{
    public int Steps { get; init; } = 50;
    /// <summary>
    /// 1 by default: on dit-fmnist's samples of its 64 pretraining captions (25 steps, guidance 1.5) the judge named the
    /// caption's class in 57.6% with eta 1 and 31.1% with eta 0, whose samples fill with stroke-like textures
    /// (Fréchet distance 0.60 and 12.5): the fresh noise of each step washes out the errors of the model's low-noise
    /// predictions.
    /// </summary>
    public double Eta { get; init; } = 1.0;
    /// <summary>
    /// Classifier-free guidance scale w: eps = eps_uncond + w (eps_cond - eps_uncond); 1 is the conditional model alone.
    /// 1.5 by default, chosen on dit-fmnist's samples of its 64 pretraining captions (8 each, 25 steps, eta 1): the judge
    /// named the caption's class in 50.4% at w = 1, 55.9% at 1.25, 57.6% at 1.5, 54.3% at 1.75 and 43.9% at 2; larger
    /// scales saturate the samples.
    /// </summary>
    public double Guidance { get; init; } = 1.5;
    /// <summary>Clamp the predicted clean image to [-1, 1] at every step (the data's range), as diffusers' clip_sample.</summary>
    public bool ClipDenoised { get; init; } = true;
    /// <summary>Images per forward pass (each is two rows with guidance).</summary>
    public int BatchSize { get; init; } = 64;

    public SamplerOptions Validate(int trainSteps)
    {
        if (Steps < 1 || Steps > trainSteps)
            throw new ArgumentOutOfRangeException(nameof(Steps), Steps, $"sampling steps must be in 1..{trainSteps} (the schedule's timesteps)");
        if (!(Eta >= 0)) throw new ArgumentOutOfRangeException(nameof(Eta), Eta, "eta must be non-negative");
        if (!double.IsFinite(Guidance) || Guidance < 0) throw new ArgumentOutOfRangeException(nameof(Guidance), Guidance, "the guidance scale must be finite and non-negative");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "the batch size must be positive");
        return this;
    }
}

/// <summary>
/// DDIM sampling (Song, Meng and Ermon, Eq. 12) with classifier-free guidance (Ho and Salimans), seeded: the same
/// model, prompts, options and seed give the same images.
/// </summary>
public static class DdimSampler
{
    /// <summary>The timesteps visited, descending: t_i = floor(i T / steps) for i = steps-1 .. 0.</summary>
    public static int[] Timesteps(int trainSteps, int steps)
    {
        if (steps < 1 || steps > trainSteps) throw new ArgumentOutOfRangeException(nameof(steps), steps, $"steps must be in 1..{trainSteps}");
        return Enumerable.Range(0, steps).Select(i => (int)((long)i * trainSteps / steps)).Reverse().ToArray();
    }

    /// <summary>eps_uncond + w (eps_cond - eps_uncond).</summary>
    public static Tensor Guide(Tensor unconditional, Tensor conditional, double scale) => unconditional + (conditional - unconditional) * scale;

    /// <summary>
    /// One DDIM step from x_t to x_{t_prev} (Eq. 12):
    /// x0 = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t), optionally clamped to [-1, 1];
    /// sigma = eta sqrt((1 - a_prev) / (1 - a_t)) sqrt(1 - a_t / a_prev);
    /// x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev - sigma^2) eps + sigma z,
    /// where a is alpha-bar and a_prev = 1 after the last step. <paramref name="noise"/> (z) is needed when sigma &gt; 0.
    /// </summary>
    public static Tensor Step(Tensor xt, Tensor eps, double alphaBar, double alphaBarPrev, double eta, Tensor? noise, bool clipDenoised)
    {
        using var scope = NewDisposeScope();
        var x0 = (xt - eps * Math.Sqrt(1 - alphaBar)) / Math.Sqrt(alphaBar);
        if (clipDenoised) x0 = x0.clamp(-1, 1);
        double sigma = Sigma(alphaBar, alphaBarPrev, eta);
        var next = x0 * Math.Sqrt(alphaBarPrev) + eps * Math.Sqrt(Math.Max(0, 1 - alphaBarPrev - sigma * sigma));
        if (sigma > 0)
        {
            if (noise is null) throw new ArgumentException("eta > 0 needs noise for the step");
            next = next + noise * sigma;
        }
        return next.MoveToOuterDisposeScope();
    }

    /// <summary>DDIM's sigma_t(eta).</summary>
    public static double Sigma(double alphaBar, double alphaBarPrev, double eta) =>
        eta * Math.Sqrt((1 - alphaBarPrev) / (1 - alphaBar)) * Math.Sqrt(1 - alphaBar / alphaBarPrev);

    /// <summary>
    /// Samples one image per row of <paramref name="prompts"/> (text states from the frozen encoder), guided against
    /// <paramref name="empty"/> (the empty caption's states, one row). Noise comes from a generator seeded with
    /// <paramref name="seed"/> on the CPU, so images do not depend on the device's random stream. Returns images in
    /// [-1, 1], (N, C, H, W), on the CPU. <paramref name="progress"/> gets (steps done, steps).
    /// </summary>
    public static Tensor Sample(DiffusionTransformer model, NoiseSchedule schedule, TextStates prompts, TextStates empty, long seed,
        SamplerOptions options, Action<int, int>? progress = null)
    {
        options.Validate(schedule.Steps);
        if (empty.Count != 1) throw new ArgumentException($"the empty caption's states are one row, got {empty.Count}");
        var c = model.Config;
        var device = model.parameters().First().device;
        var dtype = model.parameters().First().dtype;
        bool wasTraining = model.training;
        model.eval();
        using var _ = no_grad();
        var generator = new Generator(unchecked((ulong)seed));
        long n = prompts.Count;
        using var x = randn(new long[] { n, c.Channels, c.ImageSize, c.ImageSize }, ScalarType.Float32, generator: generator);
        var current = x.to(dtype).to(device);
        var times = Timesteps(schedule.Steps, options.Steps);
        bool guided = options.Guidance != 1.0;
        using var joined = guided ? TextStates.Concat(prompts, empty) : prompts.PadTo(prompts.Length);
        using var states = joined.To(device);
        var text = states.States.to(dtype);
        for (int i = 0; i < times.Length; i++)
        {
            using var scope = NewDisposeScope();
            int t = times[i];
            double a = schedule.AlphaBars[t], aPrev = i + 1 < times.Length ? schedule.AlphaBars[times[i + 1]] : 1.0;
            var eps = PredictNoise(model, current, t, text, states.Mask, n, guided, options);
            Tensor? z = null;
            if (Sigma(a, aPrev, options.Eta) > 0)
                z = randn(new long[] { n, c.Channels, c.ImageSize, c.ImageSize }, ScalarType.Float32, generator: generator).to(dtype).to(device);
            var next = Step(current, eps, a, aPrev, options.Eta, z, options.ClipDenoised);
            current.Dispose();
            current = next.MoveToOuterDisposeScope();
            progress?.Invoke(i + 1, times.Length);
        }
        model.train(wasTraining);
        var result = current.to(ScalarType.Float32).cpu().clamp(-1, 1);
        current.Dispose();
        return result;
    }

    /// <summary>The (guided) noise prediction for all n images at timestep t, in chunks of the batch size.</summary>
    private static Tensor PredictNoise(DiffusionTransformer model, Tensor x, int t, Tensor text, Tensor mask, long n, bool guided, SamplerOptions o)
    {
        var parts = new List<Tensor>();
        for (long start = 0; start < n; start += o.BatchSize)
        {
            long len = Math.Min(o.BatchSize, n - start);
            var xs = x.narrow(0, start, len);
            var cond = text.narrow(0, start, len);
            var condMask = mask.narrow(0, start, len);
            if (!guided)
            {
                parts.Add(model.forward(xs, full(len, t, ScalarType.Int64, x.device), cond, condMask));
                continue;
            }
            var uncond = text.narrow(0, n, 1).expand(len, -1, -1);
            var uncondMask = mask.narrow(0, n, 1).expand(len, -1);
            var both = model.forward(cat(new[] { xs, xs }, 0), full(2 * len, t, ScalarType.Int64, x.device),
                cat(new[] { cond, uncond }, 0), cat(new[] { condMask, uncondMask }, 0));
            var halves = both.chunk(2, 0);
            parts.Add(Guide(halves[1], halves[0], o.Guidance));
        }
        return parts.Count == 1 ? parts[0] : cat(parts, 0);
    }
}
