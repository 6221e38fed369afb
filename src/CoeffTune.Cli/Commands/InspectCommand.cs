using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using CoeffTune.Adapters;
using CoeffTune.Methods.Coeff;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace CoeffTune.Cli.Commands;

/// <summary>One layer's mixing matrix alpha' (rows: the head receiving, columns: the head whose map is mixed in).</summary>
public sealed record LayerMixing(string Layer, double[,] AlphaPrime)
{
    public int Heads => AlphaPrime.GetLength(0);

    /// <summary>||alpha' - I||_F: how far the layer moved from plain multi-head attention.</summary>
    public double DistanceFromIdentity
    {
        get
        {
            double s = 0;
            for (int i = 0; i < Heads; i++)
                for (int j = 0; j < Heads; j++)
                {
                    double d = AlphaPrime[i, j] - (i == j ? 1 : 0);
                    s += d * d;
                }
            return Math.Sqrt(s);
        }
    }

    /// <summary>The <paramref name="k"/> off-diagonal entries largest in magnitude: (receiving head, source head, value).</summary>
    public IEnumerable<(int To, int From, double Value)> LargestOffDiagonal(int k) =>
        (from i in Enumerable.Range(0, Heads) from j in Enumerable.Range(0, Heads) where i != j select (i, j, AlphaPrime[i, j]))
        .OrderByDescending(e => Math.Abs(e.Item3)).ThenBy(e => e.i).ThenBy(e => e.j).Take(k);
}

/// <summary><c>coefftune inspect RUN_OR_ADAPTER</c>: the learned head-mixing coefficients, as numbers and heatmaps.</summary>
public static class InspectCommand
{
    public const string PlotFile = "inspect.png";
    private const string AlphaSuffix = "." + CoeffTuning.ModuleName + ".alpha";

    public static Command Create()
    {
        var target = new Argument<string>("run-or-adapter") { Description = "run folder or adapter folder of a recipe with coeff" };
        var output = new Option<string?>("--out") { Description = $"folder for {PlotFile} (default: the folder given)" };
        var top = new Option<int>("--top") { Description = "off-diagonal entries listed per layer", DefaultValueFactory = _ => 3 };
        var cmd = new Command("inspect", "Show the learned Coeff-Tuning mixing matrices alpha' per layer: largest cross-head entries, distance from identity, heatmaps") { target, output, top };
        cmd.SetAction(p => Run(p.GetValue(target)!, p.GetValue(output), p.GetValue(top)));
        return cmd;
    }

    /// <summary>Reads alpha' of every layer from an adapter folder, in layer order.</summary>
    public static IReadOnlyList<LayerMixing> Read(string adapterDir, AdapterInfo info)
    {
        var configPath = Path.Combine(adapterDir, AdapterFile.ConfigName);
        var coeff = (info.Config["methods"] as JsonObject)?["coeff"] as JsonObject
            ?? throw new InvalidDataException($"{configPath}: the recipe '{info.Recipe}' has no coeff, so there is no mixing matrix to inspect");
        var residual = CoeffConfig.FromJson(coeff).Parameterization == AlphaParameterization.Residual;
        var weightsPath = Path.Combine(adapterDir, AdapterFile.WeightsName);
        if (!File.Exists(weightsPath)) throw new FileNotFoundException($"{weightsPath}: adapter weights are missing");
        var tensors = AdapterFile.ReadTensors(adapterDir, info);
        try
        {
            var layers = new List<LayerMixing>();
            foreach (var (key, t) in tensors.Where(kv => kv.Key.EndsWith(AlphaSuffix)))
            {
                if (t.dim() != 2 || t.shape[0] != t.shape[1])
                    throw new InvalidDataException($"{weightsPath}: '{key}' has shape [{string.Join(", ", t.shape)}], not H x H");
                int h = (int)t.shape[0];
                var v = t.to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
                var a = new double[h, h];
                for (int i = 0; i < h; i++)
                    for (int j = 0; j < h; j++)
                        a[i, j] = v[i * h + j] + (residual && i == j ? 1 : 0);   // residual: alpha' = I + alpha
                layers.Add(new LayerMixing(key[..^AlphaSuffix.Length], a));
            }
            if (layers.Count == 0) throw new InvalidDataException($"{weightsPath}: no '*{AlphaSuffix}' tensors although the recipe has coeff");
            return layers.OrderBy(l => NaturalKey(l.Layer), StringComparer.Ordinal).ToList();
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    // "encoder.layer.10.attention" after "encoder.layer.9.attention": numbers compared by value.
    private static string NaturalKey(string s) => Regex.Replace(s, @"\d+", d => d.Value.PadLeft(6, '0'));

    private static int Run(string target, string? outDir, int top)
    {
        if (top < 0) throw new ArgumentException($"--top {top}: must not be negative");
        var src = AdapterSource.Resolve(target, "inspect");
        var layers = Read(src.AdapterDir, src.Info);
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine($"{src.Info.Recipe} on {src.Info.BaseName ?? src.Info.Architecture}: {layers.Count} layers of {layers[0].Heads} x {layers[0].Heads} alpha'");
        foreach (var l in layers)
        {
            Console.WriteLine($"{l.Layer}: ||alpha' - I||_F = {l.DistanceFromIdentity.ToString("F6", inv)}");
            foreach (var (to, from, value) in l.LargestOffDiagonal(top))
                Console.WriteLine($"  head {to} <- head {from}: {value.ToString("+0.000000;-0.000000", inv)}");
        }
        var png = Path.Combine(outDir ?? target, PlotFile);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(png))!);
        Plots.MixingHeatmaps(layers.Select(l => (l.Layer, l.AlphaPrime)).ToList(), png);
        Console.WriteLine($"wrote {png}");
        return 0;
    }
}
