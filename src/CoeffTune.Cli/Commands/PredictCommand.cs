using System.CommandLine;
using CoeffTune.Text;
using System.Globalization;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace CoeffTune.Cli.Commands;

/// <summary><c>coefftune predict --adapter DIR INPUT...</c>: class probabilities for texts or image files.</summary>
public static class PredictCommand
{
    public static Command Create()
    {
        var adapter = new Option<string>("--adapter") { Description = "adapter folder or run folder", Required = true };
        var model = new Option<string?>("--model") { Description = "base model (default: the adapter's base_model.name_or_path)" };
        var top = new Option<int>("--top") { Description = "probabilities shown per input", DefaultValueFactory = _ => 3 };
        var device = new Option<string>("--device") { Description = "cpu, cuda, cuda:1, ...", DefaultValueFactory = _ => "cpu" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "text: tokens kept per input", DefaultValueFactory = _ => 128 };
        var json = new Option<bool>("--json") { Description = "print every class probability and the raw logits as JSON" };
        var inputs = new Argument<string[]>("inputs") { Description = "texts (text adapters) or PNG/JPEG paths (image adapters)", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("predict", "Predict labels with an adapter: texts for a text model, image files for an image model") { adapter, model, top, device, maxTokens, json, inputs };
        cmd.SetAction(p => Run(p.GetValue(adapter)!, p.GetValue(model), p.GetValue(top), EvalCommand.CheckDevice(p.GetValue(device)!),
            p.GetValue(maxTokens), p.GetValue(json), p.GetValue(inputs)!));
        return cmd;
    }

    private static int Run(string adapterDir, string? modelName, int top, string device, int maxTokens, bool asJson, string[] inputs)
    {
        if (top < 1) throw new ArgumentException($"--top {top}: must be at least 1");
        var src = AdapterSource.Resolve(adapterDir);
        var m = AdaptedModel.Load(src, modelName, maxTokens, device, Console.Error);
        float[][] probs, logits;
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            using var batch = m.Encode(inputs, TorchSharp.torch.device(device));
            var raw = m.Model.forward(batch).to_type(ScalarType.Float32).cpu();
            var p = nn.functional.softmax(raw, 1);
            logits = Enumerable.Range(0, inputs.Length).Select(i => raw[i].data<float>().ToArray()).ToArray();
            probs = Enumerable.Range(0, inputs.Length).Select(i => p[i].data<float>().ToArray()).ToArray();
        }
        var labels = src.Labels(probs[0].Length);
        var inv = CultureInfo.InvariantCulture;
        if (asJson)
        {
            var preds = new JsonArray();
            for (int i = 0; i < inputs.Length; i++)
            {
                int best = ArgMax(probs[i]);
                var all = new JsonObject();
                for (int c = 0; c < labels.Count; c++) all[labels[c]] = probs[i][c];
                preds.Add(new JsonObject
                {
                    ["input"] = inputs[i], ["label"] = labels[best], ["index"] = best, ["probabilities"] = all,
                    // The head's raw outputs in label order, e.g. to compare with an exported model's.
                    ["logits"] = new JsonArray(logits[i].Select(v => (JsonNode)v).ToArray()),
                });
            }
            Console.WriteLine(new JsonObject { ["model"] = m.BaseName, ["recipe"] = m.Peft.Recipe, ["predictions"] = preds }.ToJsonString());
            return 0;
        }
        for (int i = 0; i < inputs.Length; i++)
        {
            var ranked = Enumerable.Range(0, labels.Count).OrderByDescending(c => probs[i][c]).Take(top)
                .Select(c => $"{TerminalText.Quote(labels[c])} {probs[i][c].ToString("F4", inv)}");
            Console.WriteLine($"{TerminalText.Quote(labels[ArgMax(probs[i])])}\t[{string.Join(", ", ranked)}]\t{TerminalText.Quote(inputs[i])}");
        }
        return 0;
    }

    private static int ArgMax(float[] p)
    {
        int best = 0;
        for (int c = 1; c < p.Length; c++) if (p[c] > p[best]) best = c;
        return best;
    }
}
