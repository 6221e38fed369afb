using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CoeffTune.Adapters;
using CoeffTune.Models;
using TorchSharp.PyBridge;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Cli.Commands;

/// <summary>
/// <c>coefftune merge --adapter DIR --out FILE.safetensors</c>: folds what can be folded into the base
/// weights and writes the merged model's state dict, after checking that merging left the logits unchanged.
/// </summary>
public static class MergeCommand
{
    public const double Tolerance = 1e-4;
    public static Command Create()
    {
        var adapter = new Option<string>("--adapter") { Description = "adapter folder or run folder", Required = true };
        var output = new Option<string>("--out") { Description = "merged model file (.safetensors); a .merge.json beside it says what stayed unmerged", Required = true };
        var model = new Option<string?>("--model") { Description = "base model (default: the adapter's base_model.name_or_path)" };
        var cmd = new Command("merge", "Merge an adapter into its base model's weights and write the merged state dict") { adapter, output, model };
        cmd.SetAction(p => Run(p.GetValue(adapter)!, p.GetValue(output)!, p.GetValue(model)));
        return cmd;
    }

    /// <summary>The JSON file written beside <paramref name="outPath"/>.</summary>
    public static string InfoPath(string outPath) => Path.ChangeExtension(outPath, null) + ".merge.json";

    private static int Run(string adapterDir, string outPath, string? modelName)
    {
        if (!outPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"--out {outPath}: must end in .safetensors");
        var src = AdapterSource.Resolve(adapterDir);
        var m = AdaptedModel.Load(src, modelName, maxTokens: 128, device: "cpu", Console.Error);
        var model = m.Model;
        string summary;
        double diff;
        long probes;
        try { (summary, diff, probes) = m.MergeChecked(Tolerance); }
        catch (InvalidOperationException e) { throw new InvalidOperationException($"{e.Message}; {outPath} not written"); }
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(summary);
        Console.WriteLine($"merged vs unmerged logits on {probes} probe inputs: max abs diff {diff.ToString("G3", inv)}");

        // Only the plain model's names: the file loads into a fresh model; runtime tensors (alpha) stay in the adapter.
        var state = model.state_dict();
        var tensors = m.BaseKeys.OrderBy(k => k, StringComparer.Ordinal).ToDictionary(k => k, k => state[k].detach().cpu().contiguous());
        var runtime = state.Keys.Where(k => !m.BaseKeys.Contains(k) && m.Peft.Methods.Any(x => !x.CanMerge && x.TrainableNames.Contains(k)))
            .OrderBy(k => k, StringComparer.Ordinal).ToList();
        CoeffTune.IO.AtomicFile.Write(outPath, tmp => Safetensors.SaveStateDict(tmp, tensors));
        foreach (var t in tensors.Values) t.Dispose();

        var info = new JsonObject
        {
            ["format"] = "coefftune-merged",
            ["recipe"] = m.Peft.Recipe,
            ["base_model"] = new JsonObject { ["name_or_path"] = m.BaseName, ["architecture"] = model.Architecture, ["identity"] = m.Peft.BaseIdentity },
            ["labels"] = new JsonArray(src.Labels((int)model.Head.weight!.shape[0]).Select(l => (JsonNode)l!).ToArray()),
            ["merged"] = new JsonArray(m.Peft.Methods.Where(x => x.CanMerge).Select(x => (JsonNode)x.Config.Method!).ToArray()),
            ["unmerged"] = new JsonArray(m.Peft.Methods.Where(x => !x.CanMerge && x.TrainableNames.Count > 0).Select(x => (JsonNode)x.Config.Method!).ToArray()),
            // Where to find what must be re-attached at runtime: the adapter's tensors under these names.
            ["runtime_tensors"] = new JsonArray(runtime.Select(k => (JsonNode)AdapterFile.KeyFor(model.Architecture, k)!).ToArray()),
            ["adapter"] = Path.GetFullPath(src.AdapterDir),
            ["summary"] = summary,
            ["probe_max_abs_diff"] = diff,
        };
        Cli.WriteAtomic(InfoPath(outPath), info.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine($"wrote {outPath} ({tensors.Count} tensors) and {InfoPath(outPath)}");
        return 0;
    }
}
