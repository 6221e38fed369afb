using CoeffTune.Toy;

namespace CoeffTune.Tests.Toy;

public class FilterSubspaceToyTests
{
    [Fact]
    public void Maps_alone_stay_in_the_hull_while_alpha_matches_the_target()
    {
        var results = FilterSubspaceToy.Run(new ToyOptions { Seeds = 2, Budgets = new[] { 300 } })[0];
        var (i, ii, iii, iv) = (results[0], results[1], results[2], results[3]);
        Assert.All(i.Mse, m => Assert.True(m >= ToyClaims.HullBound - 1e-6, $"(i) MSE {m} below the hull bound"));
        // The bound holds whatever training does; training must also come close to it, or setting (i) would show
        // only that the maps were never fitted. This test's short runs measured 0.2551 and 0.2552 (the command's
        // longer ones 0.25005); outputs left at the centre, as untrained uniform maps give, score 0.75.
        Assert.All(i.Mse, m => Assert.True(m <= ToyClaims.HullBound + 0.01, $"(i) MSE {m}: training did not reach the hull bound"));
        Assert.True(i.AllInsideSquare);
        Assert.False(ii.AllInsideSquare);                     // a trained W_v scales the hull itself
        Assert.True(iii.MseMean < ToyClaims.NearZero, $"(iii) MSE {iii.MseMean}");
        Assert.True(iv.MseMean < ToyClaims.NearZero, $"(iv) MSE {iv.MseMean}");  // alpha alone leaves the hull
        Assert.False(iv.AllInsideSquare);
        Assert.Equal(new long[] { 32, 48, 64, 48 }, results.Select(r => r.Trainable).ToArray());
    }

    [Fact]
    public void Mse_is_the_mean_over_sixteen_coordinates()
    {
        // The nodes themselves against the target: four nodes are off by 1 in one coordinate.
        Assert.Equal(4.0 / 16, FilterSubspaceToy.Mse(FilterSubspaceToy.Nodes), 12);
    }
}
