using static TorchSharp.torch;

namespace CoeffTune.Diffusion;

/// <summary>How the noise variances beta_t grow over the diffusion steps.</summary>
public enum BetaSchedule
{
    /// <summary>Ho et al. (DDPM): beta_t linear from 1e-4 to 0.02.</summary>
    Linear,
    /// <summary>Nichol and Dhariwal: alpha-bar(t) = f(t/T) / f(0), f(u) = cos^2((u + s) / (1 + s) * pi / 2), beta clipped at 0.999.</summary>
    Cosine,
}

/// <summary>
/// The forward (noising) process of a diffusion model: beta_t for t = 0..T-1, alpha_t = 1 - beta_t and
/// alpha-bar_t = prod_{s &lt;= t} alpha_s, kept in double precision. q(x_t | x_0) = N(sqrt(alpha-bar_t) x_0, (1 - alpha-bar_t) I)
/// (DDPM Eq. 4), so a noised image is drawn in one step from the clean one (<see cref="AddNoise"/>).
/// </summary>
public sealed class NoiseSchedule
{
    private readonly double[] betas;
    private readonly double[] alphaBars;

    public BetaSchedule Kind { get; }
    /// <summary>T, the number of training timesteps.</summary>
    public int Steps => betas.Length;
    public IReadOnlyList<double> Betas => betas;
    /// <summary>alpha-bar_t for t = 0..T-1.</summary>
    public IReadOnlyList<double> AlphaBars => alphaBars;

    private NoiseSchedule(BetaSchedule kind, double[] betas)
    {
        Kind = kind;
        this.betas = betas;
        alphaBars = new double[betas.Length];
        double product = 1;
        for (int t = 0; t < betas.Length; t++) alphaBars[t] = product *= 1 - betas[t];
    }

    /// <summary>beta_t = start + (end - start) t / (T - 1), DDPM's schedule (start 1e-4, end 0.02, T = 1000).</summary>
    public static NoiseSchedule Linear(int steps = 1000, double betaStart = 1e-4, double betaEnd = 0.02)
    {
        if (steps < 2) throw new ArgumentOutOfRangeException(nameof(steps), steps, "a schedule needs at least 2 steps");
        if (!(betaStart > 0 && betaStart <= betaEnd && betaEnd < 1))
            throw new ArgumentOutOfRangeException(nameof(betaEnd), $"betas must satisfy 0 < start <= end < 1, got {betaStart} and {betaEnd}");
        return new(BetaSchedule.Linear, Enumerable.Range(0, steps).Select(t => betaStart + (betaEnd - betaStart) * t / (steps - 1)).ToArray());
    }

    /// <summary>
    /// Improved DDPM's cosine schedule: beta_t = min(1 - f((t+1)/T) / f(t/T), maxBeta), so that, where no beta is
    /// clipped, alpha-bar_t = f((t+1)/T) / f(0) exactly.
    /// </summary>
    public static NoiseSchedule Cosine(int steps = 1000, double offset = 0.008, double maxBeta = 0.999)
    {
        if (steps < 2) throw new ArgumentOutOfRangeException(nameof(steps), steps, "a schedule needs at least 2 steps");
        if (!(offset >= 0)) throw new ArgumentOutOfRangeException(nameof(offset), offset, "the cosine offset s must be non-negative");
        if (!(maxBeta > 0 && maxBeta < 1)) throw new ArgumentOutOfRangeException(nameof(maxBeta), maxBeta, "the largest beta must be in (0, 1)");
        double F(double u) => Math.Pow(Math.Cos((u + offset) / (1 + offset) * Math.PI / 2), 2);
        return new(BetaSchedule.Cosine, Enumerable.Range(0, steps).Select(t => Math.Min(1 - F((t + 1.0) / steps) / F((double)t / steps), maxBeta)).ToArray());
    }

    public static NoiseSchedule Create(BetaSchedule kind, int steps = 1000) => kind switch
    {
        BetaSchedule.Linear => Linear(steps),
        BetaSchedule.Cosine => Cosine(steps),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown beta schedule"),
    };

    /// <summary>alpha-bar at each of the timesteps <paramref name="t"/> (B), as a (B) tensor of <paramref name="dtype"/> on t's device.</summary>
    public Tensor AlphaBar(Tensor t, ScalarType dtype)
    {
        using var table = tensor(alphaBars, ScalarType.Float64, t.device);
        using var picked = table.index_select(0, t.to_type(ScalarType.Int64));
        return picked.to_type(dtype);
    }

    /// <summary>x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) noise, each row of the batch at its own t (DDPM Eq. 4).</summary>
    public Tensor AddNoise(Tensor x0, Tensor noise, Tensor t)
    {
        using var scope = NewDisposeScope();
        var shape = new long[] { -1 }.Concat(Enumerable.Repeat(1L, (int)x0.dim() - 1)).ToArray();
        // Both factors in double precision: 1 - alpha-bar in float32 loses digits where alpha-bar is near 1.
        var a = AlphaBar(t, ScalarType.Float64);
        var signal = a.sqrt().to_type(x0.dtype).view(shape);
        var spread = (1 - a).sqrt().to_type(x0.dtype).view(shape);
        return (signal * x0 + spread * noise).MoveToOuterDisposeScope();
    }
}
