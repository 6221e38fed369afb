using CoeffTune.Attention;
using CoeffTune.Methods.Coeff;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CoeffTune.Toy;

/// <summary>Which parts of the toy attention layer are trained.</summary>
public sealed record ToySetting(string Name, string Label, bool TuneValues, bool TuneAlpha);

/// <summary>Settings of the Figure 3 experiment. Fixed before any result was looked at.</summary>
public sealed record ToyOptions
{
    public int Heads { get; init; } = 4;
    public int KeyWidth { get; init; } = 2;
    public int Seeds { get; init; } = 5;
    /// <summary>Step counts at which outputs are read; the last is the length of the run.</summary>
    public int[] Budgets { get; init; } = { 50, 300, 3000 };
    public double LearningRate { get; init; } = 0.02;
}

/// <summary>One setting's result at one budget, over seeds.</summary>
public sealed record ToyResult(ToySetting Setting, int Steps, long Trainable, double[] Mse, double MaxDist,
    bool AllInsideSquare, double[,] Outputs)
{
    public double MseMean => Mse.Average();
    public double MseStd => Math.Sqrt(Mse.Select(m => (m - MseMean) * (m - MseMean)).Sum() / Math.Max(1, Mse.Length - 1));
    public double MseMin => Mse.Min();
}

/// <summary>
/// The paper's validation experiment (Figure 3): one attention layer O = sum_h F^h(X) X W_v^h on the
/// eight nodes of a square, fitted to a target that pushes four nodes outside the square. With W_v
/// fixed, every output is a convex combination of the nodes, so the fit cannot leave the square.
/// </summary>
public static class FilterSubspaceToy
{
    public static readonly double[,] Nodes = { { -1, 1 }, { 0, 1 }, { 1, 1 }, { 1, 0 }, { 1, -1 }, { 0, -1 }, { -1, -1 }, { -1, 0 } };
    public static readonly double[,] Target = { { -1, 1 }, { 0, 2 }, { 1, 1 }, { 2, 0 }, { 1, -1 }, { 0, -2 }, { -1, -1 }, { -2, 0 } };

    /// <summary>(i)-(iii) are the paper's; (iv) isolates alpha with the value map fixed.</summary>
    public static readonly ToySetting[] Settings =
    {
        new("(i)", "W_q, W_k", false, false),
        new("(ii)", "W_q, W_k, W_v", true, false),
        new("(iii)", "W_q, W_k, W_v, alpha", true, true),
        new("(iv)", "W_q, W_k, alpha (W_v fixed)", false, true),
    };

    /// <summary>Runs every setting for every seed; result[b][s] is setting s after budget b.</summary>
    public static ToyResult[][] Run(ToyOptions o)
    {
        if (o.Seeds < 1 || o.Heads < 1 || o.KeyWidth < 1 || o.Budgets.Length == 0 || o.Budgets.Any(b => b < 1))
            throw new ArgumentException("toy: seeds, heads, key width and every budget must be positive");
        var budgets = o.Budgets.Distinct().Order().ToArray();
        var runs = Settings.Select(s => Enumerable.Range(0, o.Seeds).Select(seed => Fit(s, o with { Budgets = budgets }, seed)).ToArray()).ToArray();
        return budgets.Select((steps, b) => Settings.Select((s, i) =>
            Summarise(s, steps, runs[i].Select(r => r.Outputs[b]).ToArray(), runs[i][0].Trainable)).ToArray()).ToArray();
    }

    private static ToyResult Summarise(ToySetting s, int steps, double[][,] outs, long trainable)
    {
        var mse = outs.Select(o => Mse(o)).ToArray();
        double maxDist = outs.Max(o => Enumerable.Range(0, 8).Max(i => Math.Sqrt(Sq(o[i, 0] - Target[i, 0]) + Sq(o[i, 1] - Target[i, 1]))));
        bool inside = outs.All(o => Enumerable.Range(0, 8).All(i => Math.Abs(o[i, 0]) <= 1 + 1e-9 && Math.Abs(o[i, 1]) <= 1 + 1e-9));
        int best = Array.IndexOf(mse, mse.Min());
        return new ToyResult(s, steps, trainable, mse, maxDist, inside, outs[best]);
    }

    private static double Sq(double x) => x * x;

    public static double Mse(double[,] o)
    {
        double sum = 0;
        for (int i = 0; i < 8; i++) for (int j = 0; j < 2; j++) sum += Sq(o[i, j] - Target[i, j]);
        return sum / 16;
    }

    /// <summary>Trains one setting from one seed, float64 Adam; returns the outputs after each budget.</summary>
    public static (double[][,] Outputs, long Trainable) Fit(ToySetting s, ToyOptions o, int seed)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator((ulong)(1000 + seed));
        int h = o.Heads, dk = o.KeyWidth;
        // Same initialisation in every setting: W_q, W_k ~ N(0, 1); W_v^h = I / H.
        var x = tensor(Nodes).unsqueeze(0);                      // (1, 8, 2)
        var target = tensor(Target).unsqueeze(0);
        var pq = new Parameter(randn(new long[] { h, 2, dk }, ScalarType.Float64, generator: gen));
        var pk = new Parameter(randn(new long[] { h, 2, dk }, ScalarType.Float64, generator: gen));
        var pv = new Parameter((eye(2, dtype: ScalarType.Float64) / h).unsqueeze(0).repeat(h, 1, 1), requires_grad: s.TuneValues);
        using var mixing = new CoeffMixing(h, new CoeffConfig());
        mixing.to(ScalarType.Float64);

        var trainable = new List<Parameter> { pq, pk };
        if (s.TuneValues) trainable.Add(pv);
        if (s.TuneAlpha) trainable.Add(mixing.alpha);
        long count = trainable.Sum(t => t.numel());
        using var opt = optim.Adam(trainable, o.LearningRate);

        Tensor Forward()
        {
            var q = matmul(x.unsqueeze(1), pq);                  // (1, H, 8, dk)
            var k = matmul(x.unsqueeze(1), pk);
            var maps = MultiHeadAttention.AttentionMaps(q, k, null);
            if (s.TuneAlpha) maps = mixing.call(maps);
            var v = matmul(x.unsqueeze(1), pv);                  // (1, H, 8, 2): X W_v^h
            return matmul(maps, v).sum(1);                       // sum over heads: (1, 8, 2)
        }

        var outputs = new List<double[,]>();
        for (int step = 1; step <= o.Budgets.Max(); step++)
        {
            using var stepScope = NewDisposeScope();
            opt.zero_grad();
            var loss = nn.functional.mse_loss(Forward(), target);
            loss.backward();
            opt.step();
            if (o.Budgets.Contains(step)) outputs.Add(Read(Forward));
        }
        return (outputs.ToArray(), count);
    }

    private static double[,] Read(Func<Tensor> forward)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var data = forward().squeeze(0).contiguous().data<double>().ToArray();
        var r = new double[8, 2];
        for (int i = 0; i < 8; i++) { r[i, 0] = data[2 * i]; r[i, 1] = data[2 * i + 1]; }
        return r;
    }
}

/// <summary>The paper's statements about Figure 3, checked against results. Thresholds fixed in advance.</summary>
public static class ToyClaims
{
    /// <summary>"Near zero": MSE below this.</summary>
    public const double NearZero = 1e-3;
    /// <summary>"Clearly off the target": MSE above this.</summary>
    public const double ClearlyOff = 1e-2;
    /// <summary>The convex-hull bound on the MSE when the value map is a convex combination of the nodes.</summary>
    public const double HullBound = 0.25;

    /// <summary>Each claim with whether it held; results are the settings (i)-(iv) at one budget.</summary>
    public static IReadOnlyList<(string Claim, bool Holds, string Evidence)> Check(ToyResult[] r)
    {
        var (i, ii, iii) = (r[0], r[1], r[2]);
        return new List<(string, bool, string)>
        {
            ("(i) W_q, W_k only: MSE >= 0.25, every output inside the square",
                i.Mse.All(m => m >= HullBound - 1e-6) && i.AllInsideSquare,
                $"min MSE {i.MseMin:G4}, inside square: {i.AllInsideSquare}"),
            ("(ii) W_q, W_k, W_v: leaves the square but stays clearly off the target (MSE > 0.01)",
                !ii.AllInsideSquare && ii.MseMean > ClearlyOff,
                $"MSE {ii.MseMean:G3}, inside square: {ii.AllInsideSquare}"),
            ("(iii) + alpha: matches the target (MSE < 0.001)",
                iii.MseMean < NearZero, $"MSE {iii.MseMean:G3}"),
        };
    }
}
