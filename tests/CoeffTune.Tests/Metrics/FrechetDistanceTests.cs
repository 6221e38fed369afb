using CoeffTune.Metrics;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Metrics;

/// <summary>The Fréchet distance against closed forms worked by hand.</summary>
public sealed class FrechetDistanceTests
{
    private static GaussianStats Stats(double[] mean, double[,] cov) => new(mean, cov);

    [Fact]
    public void One_dimension_is_the_squared_mean_gap_plus_the_squared_std_gap()
    {
        // N(1, 4) vs N(3, 9): (1-3)^2 + (2-3)^2 = 5.
        Assert.Equal(5.0, FrechetDistance.Between(Stats([1], new double[,] { { 4 } }), Stats([3], new double[,] { { 9 } })), 10);
    }

    [Fact]
    public void Diagonal_covariances_add_per_coordinate()
    {
        // means (0,0) vs (1,2): 5; variances (1,4) vs (4,1): (1-2)^2 + (2-1)^2 = 2. Total 7.
        var a = Stats([0, 0], new double[,] { { 1, 0 }, { 0, 4 } });
        var b = Stats([1, 2], new double[,] { { 4, 0 }, { 0, 1 } });
        Assert.Equal(7.0, FrechetDistance.Between(a, b), 10);
    }

    [Fact]
    public void A_correlated_covariance_against_the_identity()
    {
        // S1 = I, S2 = [[2,1],[1,2]] (eigenvalues 3 and 1): Tr(S1 + S2) = 6, Tr((S1 S2)^(1/2)) = sqrt(3) + 1.
        var a = Stats([0, 0], new double[,] { { 1, 0 }, { 0, 1 } });
        var b = Stats([0, 0], new double[,] { { 2, 1 }, { 1, 2 } });
        Assert.Equal(6 - 2 * (Math.Sqrt(3) + 1), FrechetDistance.Between(a, b), 10);
        Assert.Equal(FrechetDistance.Between(a, b), FrechetDistance.Between(b, a), 10);
    }

    [Fact]
    public void Non_commuting_covariances_match_the_eigenvalues_of_their_product()
    {
        // S1 = diag(1, 4), S2 = [[2,1],[1,1]]: S1 S2 = [[2,1],[4,4]], trace 6, determinant 4, so its eigenvalues are
        // 3 ± sqrt(5) and the trace of its square root is sqrt(3 + sqrt 5) + sqrt(3 - sqrt 5).
        var a = Stats([0, 0], new double[,] { { 1, 0 }, { 0, 4 } });
        var b = Stats([0, 0], new double[,] { { 2, 1 }, { 1, 1 } });
        double expected = 5 + 3 - 2 * (Math.Sqrt(3 + Math.Sqrt(5)) + Math.Sqrt(3 - Math.Sqrt(5)));
        Assert.Equal(expected, FrechetDistance.Between(a, b), 9);
    }

    [Fact]
    public void Sample_statistics_use_the_unbiased_covariance_and_a_set_is_at_distance_zero_from_itself()
    {
        using var x = tensor(new double[] { 0, 0, 2, 0, 0, 2, 2, 2 }, new long[] { 4, 2 });
        var s = GaussianStats.Of(x);
        Assert.Equal(new[] { 1.0, 1.0 }, s.Mean);
        // Each coordinate is 0,2,0,2 about mean 1: sum of squares 4, over N - 1 = 3. The two are uncorrelated.
        Assert.Equal(4.0 / 3, s.Covariance[0, 0], 12);
        Assert.Equal(0.0, s.Covariance[0, 1], 12);
        Assert.Equal(0.0, FrechetDistance.Between(x, x), 9);
        using var shifted = x + 3;
        Assert.Equal(18.0, FrechetDistance.Between(x, shifted), 9);
    }

    [Fact]
    public void Bad_inputs_are_refused()
    {
        using var one = zeros(1, 3);
        Assert.Contains("at least 2", Assert.Throws<ArgumentException>(() => GaussianStats.Of(one)).Message);
        using var a = randn(5, 3);
        using var b = randn(5, 4);
        Assert.Contains("width", Assert.Throws<ArgumentException>(() => FrechetDistance.Between(a, b)).Message);
    }
}
