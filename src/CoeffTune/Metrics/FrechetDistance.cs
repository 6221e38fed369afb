using static TorchSharp.torch;

namespace CoeffTune.Metrics;

/// <summary>The mean and covariance of a set of feature vectors: what a Fréchet distance compares.</summary>
public sealed record GaussianStats(double[] Mean, double[,] Covariance)
{
    public int Dim => Mean.Length;

    /// <summary>
    /// The mean and the unbiased sample covariance (divided by N - 1, as pytorch-fid's <c>np.cov</c>) of the rows of
    /// <paramref name="features"/> (N, D), N at least 2; computed in float64.
    /// </summary>
    public static GaussianStats Of(Tensor features)
    {
        if (features.dim() != 2) throw new ArgumentException($"features must be (N, D), got ({string.Join(", ", features.shape)})", nameof(features));
        long n = features.shape[0];
        if (n < 2) throw new ArgumentException($"a covariance needs at least 2 feature vectors, got {n}", nameof(features));
        using var scope = NewDisposeScope();
        var x = features.detach().cpu().to(ScalarType.Float64);
        var mean = x.mean(new long[] { 0 });
        var centred = x - mean;
        var cov = centred.t().matmul(centred) / (n - 1);
        int d = (int)x.shape[1];
        var c = cov.data<double>().ToArray();
        var grid = new double[d, d];
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) grid[i, j] = c[i * d + j];
        return new GaussianStats(mean.data<double>().ToArray(), grid);
    }
}

/// <summary>
/// The Fréchet distance between two Gaussians (Dowson and Landau), as FID computes it on Inception features (here on
/// any model's features): |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)). The trace of the matrix square root is taken
/// as Tr((S1^(1/2) S2 S1^(1/2))^(1/2)), whose argument is symmetric positive semi-definite, through two symmetric
/// eigendecompositions in float64 (eigenvalues below zero from rounding count as zero).
/// </summary>
public static class FrechetDistance
{
    public static double Between(GaussianStats a, GaussianStats b)
    {
        if (a.Dim != b.Dim) throw new ArgumentException($"the two feature sets differ in width: {a.Dim} vs {b.Dim}");
        using var scope = NewDisposeScope();
        var m1 = tensor(a.Mean, ScalarType.Float64);
        var m2 = tensor(b.Mean, ScalarType.Float64);
        var s1 = ToTensor(a.Covariance);
        var s2 = ToTensor(b.Covariance);
        double meanTerm = (m1 - m2).square().sum().item<double>();
        var root1 = SymmetricSqrt(s1);
        var inner = root1.matmul(s2).matmul(root1);
        inner = (inner + inner.t()) / 2;
        double traceRoot = linalg.eigvalsh(inner).clamp_min(0).sqrt().sum().item<double>();
        double result = meanTerm + s1.trace().item<double>() + s2.trace().item<double>() - 2 * traceRoot;
        // Rounding can leave a tiny negative value for two identical sets.
        return Math.Max(0, result);
    }

    /// <summary>The Fréchet distance between the Gaussians fitted to two feature sets, (N, D) and (M, D).</summary>
    public static double Between(Tensor a, Tensor b) => Between(GaussianStats.Of(a), GaussianStats.Of(b));

    private static Tensor ToTensor(double[,] m)
    {
        int d = m.GetLength(0);
        var flat = new double[d * d];
        Buffer.BlockCopy(m, 0, flat, 0, flat.Length * sizeof(double));
        return tensor(flat, new long[] { d, d }, ScalarType.Float64);
    }

    /// <summary>The symmetric square root of a symmetric positive semi-definite matrix.</summary>
    private static Tensor SymmetricSqrt(Tensor s)
    {
        var (values, vectors) = linalg.eigh((s + s.t()) / 2);
        return vectors.matmul(diag(values.clamp_min(0).sqrt())).matmul(vectors.t());
    }
}
