using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using CoeffTune.Adapters;
using CoeffTune.Methods.Coeff;

namespace CoeffTune.Cli.Commands;

/// <summary><c>coefftune inspect RUN_OR_ADAPTER</c>: the learned head-mixing coefficients, as numbers and heatmaps.</summary>
public static class InspectCommand
{
    public const string PlotFile = "inspect.png";

    public static Command Create()
    {
        var target = new Argument<string>("run-or-adapter") { Description = "run folder or adapter folder of a recipe with coeff" };
        var output = new Option<string?>("--out") { Description = $"folder for {PlotFile} (default: the folder given)" };
        var top = new Option<int>("--top") { Description = "off-diagonal entries listed per layer", DefaultValueFactory = _ => 3 };
        var cmd = new Command("inspect", "Show the learned Coeff-Tuning mixing matrices alpha' per layer: largest cross-head entries, distance from identity, heatmaps") { target, output, top };
        cmd.SetAction(p => Run(p.GetValue(target)!, p.GetValue(output), p.GetValue(top)));
        return cmd;
    }

    /// <summary>Reads alpha' of every layer from an adapter folder, in layer order (<see cref="CoeffAnalysis"/>).</summary>
    public static IReadOnlyList<LayerMixing> Read(string adapterDir, AdapterInfo info)
    {
        var configPath = Path.Combine(adapterDir, AdapterFile.ConfigName);
        var coeff = (info.Config["methods"] as JsonObject)?["coeff"] as JsonObject
            ?? throw new InvalidDataException($"{configPath}: the recipe '{info.Recipe}' has no coeff, so there is no mixing matrix to inspect");
        var config = CoeffConfig.FromJson(coeff);
        var weightsPath = Path.Combine(adapterDir, AdapterFile.WeightsName);
        if (!File.Exists(weightsPath)) throw new FileNotFoundException($"{weightsPath}: adapter weights are missing");
        var tensors = AdapterFile.ReadTensors(adapterDir, info);
        try
        {
            return CoeffAnalysis.Layers(tensors, config, weightsPath);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

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
