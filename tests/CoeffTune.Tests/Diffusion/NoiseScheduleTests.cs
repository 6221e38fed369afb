using CoeffTune.Diffusion;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Diffusion;

public sealed class NoiseScheduleTests
{
    [Fact]
    public void Linear_alpha_bar_matches_products_worked_by_hand()
    {
        var s = NoiseSchedule.Linear();
        Assert.Equal(1000, s.Steps);
        Assert.Equal(1e-4, s.Betas[0], 15);
        Assert.Equal(0.02, s.Betas[999], 15);
        // beta_1 = 1e-4 + 0.0199 / 999 = 1.1991991991992e-4; alpha-bar_1 = 0.9999 * (1 - beta_1) = 0.99978009207207...
        Assert.Equal(0.9999, s.AlphaBars[0], 14);
        Assert.Equal(0.9999 * (1 - (1e-4 + 0.0199 / 999)), s.AlphaBars[1], 14);
        Assert.Equal(0.99978009207207, s.AlphaBars[1], 13);
        // beta_2 = 1e-4 + 2 * 0.0199 / 999; alpha-bar_2 = alpha-bar_1 (1 - beta_2) = 0.99964028298412...
        Assert.Equal(0.99964028298412, s.AlphaBars[2], 13);
        // DDPM's reference value of the last alpha-bar for this schedule: 4.0358e-5.
        Assert.Equal(4.0358e-5, s.AlphaBars[999], 8);
    }

    [Fact]
    public void Cosine_alpha_bar_is_its_closed_form_where_beta_is_not_clipped()
    {
        var s = NoiseSchedule.Cosine();
        static double F(double u) => Math.Pow(Math.Cos((u + 0.008) / 1.008 * Math.PI / 2), 2);
        foreach (int t in new[] { 0, 1, 250, 499, 900, 990 })
            Assert.Equal(F((t + 1) / 1000.0) / F(0), s.AlphaBars[t], 10);
        // Worked out: f(0.5) / f(0) = cos^2(0.508 / 1.008 * pi / 2) / cos^2(0.008 / 1.008 * pi / 2) = 0.49384359...
        Assert.Equal(0.49384359044, s.AlphaBars[499], 10);
        // The last beta would be 1 (f(1) = 0): it is clipped at 0.999, leaving alpha-bar positive.
        Assert.Equal(0.999, s.Betas[999], 12);
        Assert.True(s.AlphaBars[999] > 0);
        Assert.Equal(s.AlphaBars[998] * 0.001, s.AlphaBars[999], 15);
    }

    [Fact]
    public void Add_noise_is_the_closed_form_of_the_forward_process()
    {
        var s = NoiseSchedule.Linear();
        using var x0 = full(new long[] { 2, 1, 2, 2 }, 0.5f);
        using var noise = full(new long[] { 2, 1, 2, 2 }, -1.5f);
        using var t = tensor(new long[] { 0, 999 });
        using var xt = s.AddNoise(x0, noise, t);
        var v = TestUtil.Values(xt);
        double Expected(int step) => Math.Sqrt(s.AlphaBars[step]) * 0.5 + Math.Sqrt(1 - s.AlphaBars[step]) * -1.5;
        Assert.All(v.Take(4), x => Assert.Equal(Expected(0), x, 6));
        Assert.All(v.Skip(4), x => Assert.Equal(Expected(999), x, 6));
    }

    [Fact]
    public void Bad_settings_are_refused_naming_them()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => NoiseSchedule.Linear(steps: 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => NoiseSchedule.Linear(betaStart: 0.03, betaEnd: 0.02));
        Assert.Throws<ArgumentOutOfRangeException>(() => NoiseSchedule.Cosine(maxBeta: 1));
    }
}
