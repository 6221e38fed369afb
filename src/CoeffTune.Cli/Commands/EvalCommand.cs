using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using CoeffTune.Data;
using CoeffTune.Training;
using Spectre.Console;

namespace CoeffTune.Cli.Commands;

/// <summary>
/// <c>coefftune eval --adapter DIR --task TASK</c>: test accuracy and loss of an adapter, beside the same
/// model with its adapters turned off. A run folder brings its own test split, so the numbers match its report.
/// </summary>
public static class EvalCommand
{
    public const string DisabledNote = "adapters disabled = the base backbone with the trained head (every recipe trains the head)";

    public static Command Create()
    {
        var adapter = new Option<string>("--adapter") { Description = "adapter folder, or a run folder (uses its adapter/ and the test split in split.json)", Required = true };
        var task = new Option<string?>("--task") { Description = "task name or path (default for a run folder: the run's task)" };
        var model = new Option<string?>("--model") { Description = "base model (default: the adapter's base_model.name_or_path)" };
        var batch = new Option<int>("--batch-size") { Description = "batch size", DefaultValueFactory = _ => 32 };
        var device = new Option<string>("--device") { Description = "cpu, cuda, cuda:1, ...", DefaultValueFactory = _ => "cpu" };
        var maxTokens = new Option<int?>("--max-tokens") { Description = "text: tokens kept per example (default: the run's own, else 128)" };
        var json = new Option<bool>("--json") { Description = "print the result as JSON" };
        var cmd = new Command("eval", "Evaluate an adapter on a task's held-out test set, with and without its adapters") { adapter, task, model, batch, device, maxTokens, json };
        cmd.SetAction(p => Run(p.GetValue(adapter)!, p.GetValue(task), p.GetValue(model), p.GetValue(batch), CheckDevice(p.GetValue(device)!),
            p.GetValue(maxTokens), p.GetValue(json)));
        return cmd;
    }

    /// <summary>Throws naming --device unless it is a device this LibTorch can use.</summary>
    public static string CheckDevice(string device)
    {
        try { _ = TorchSharp.torch.device(device); }
        catch (Exception) { throw new ArgumentException($"--device '{device}' is not a device (cpu, cuda, cuda:N)"); }
        if (device.StartsWith("cuda") && !TorchSharp.torch.cuda.is_available())
            throw new ArgumentException($"--device {device}: CUDA is not available in this LibTorch build");
        return device;
    }

    private static int Run(string adapterDir, string? taskName, string? modelName, int batchSize, string device, int? maxTokensFlag, bool asJson)
    {
        if (batchSize < 1) throw new ArgumentException($"--batch-size {batchSize}: must be at least 1");
        var src = AdapterSource.Resolve(adapterDir);
        if (src.Info.Architecture == Models.BartForConditionalGeneration.Architecture)
            return RunSeq2Seq(src, taskName, modelName, batchSize, device, maxTokensFlag, asJson);
        taskName ??= src.RunDir is not null ? RunFinal(src.RunDir, "task")?.GetString() ?? throw new InvalidDataException($"{src.RunDir}: its metrics name no task; pass --task")
            : throw new ArgumentException($"--task is required when --adapter {adapterDir} is an adapter folder, not a run folder");
        int maxTokens = maxTokensFlag ?? (src.RunDir is not null && RunFinal(src.RunDir, "max_tokens") is { } mt ? mt.GetInt32() : 128);
        var task = TaskCatalog.Load(taskName, log: Console.Error);
        ILabeledDataset test;
        string testSet;
        if (src.SplitPath is { } splitPath)
        {
            var split = DataSplit.Load(splitPath);
            split.CheckFits(task.TrainPool, task.Test);
            test = task.Kind == TaskKind.Image ? split.Apply(task.ImageTrain, task.ImageTest).Test : split.Apply(task.TextTrain, task.TextTest).Test;
            testSet = $"the run's test split ({splitPath})";
        }
        else
        {
            test = task.Test;
            testSet = $"the task's held-out test set";
        }
        var m = AdaptedModel.Load(src, modelName, maxTokens, device, Console.Error);
        long headClasses = m.Model.Head.weight!.shape[0];
        if (headClasses != task.Classes.Count)
            throw new ArgumentException($"--task {task.Name} has {task.Classes.Count} classes, the adapter's head has {headClasses}");
        var source = m.Source(test);
        if (m.Tokenizer is { } tokenizer && test is TextDataset texts)
            Console.Error.WriteLine($"texts longer than {tokenizer.MaxLength} tokens, cut: {tokenizer.CountTruncated(texts.Texts)} of {texts.Count} test");
        var dev = TorchSharp.torch.device(device);
        var adapted = Trainer.Evaluate(m.Model, source, batchSize, dev);
        Evaluation disabled;
        using (m.Peft.DisableAdapters())
            disabled = Trainer.Evaluate(m.Model, source, batchSize, dev);

        if (asJson)
        {
            var o = new JsonObject
            {
                ["adapter"] = src.AdapterDir, ["task"] = task.Name, ["model"] = m.BaseName, ["recipe"] = m.Peft.Recipe, ["test_set"] = testSet,
                ["examples"] = adapted.Examples,
                ["adapted"] = new JsonObject { ["accuracy"] = adapted.Accuracy, ["loss"] = adapted.Loss },
                ["adapters_disabled"] = new JsonObject { ["accuracy"] = disabled.Accuracy, ["loss"] = disabled.Loss },
                ["note"] = DisabledNote,
            };
            Console.WriteLine(o.ToJsonString());
            return 0;
        }
        var t = new Table().AddColumns("model", "test accuracy", "test loss");
        t.AddRow($"{Cli.Escape(m.BaseName)} + {Cli.Escape(m.Peft.Recipe)}", $"[bold]{adapted.Accuracy:P2}[/]", $"{adapted.Loss:F4}");
        t.AddRow("adapters disabled", $"{disabled.Accuracy:P2}", $"{disabled.Loss:F4}");
        AnsiConsole.MarkupLine($"{Cli.Escape(task.Name)}: {adapted.Examples} examples from {Cli.Escape(testSet)}");
        AnsiConsole.Write(t);
        AnsiConsole.MarkupLine(Cli.Escape($"note: {DisabledNote}"));
        return 0;
    }

    /// <summary>A BART adapter: BLEU-4, exact match and token accuracy on the test pairs its training held out of a source/target file.</summary>
    private static int RunSeq2Seq(AdapterSource src, string? taskName, string? modelName, int batchSize, string device, int? maxTokensFlag, bool asJson)
    {
        JsonNode? runResult = src.RunDir is { } run && File.Exists(Path.Combine(run, AdapterSource.RunResultFile))
            ? JsonNode.Parse(File.ReadAllText(Path.Combine(run, AdapterSource.RunResultFile))) : null;
        // The run's own cut, so its pairs are tokenized as in training.
        int maxTokens = maxTokensFlag ?? runResult?["max_tokens"]?.GetValue<int>() ?? 128;
        taskName ??= runResult?["task"]?.GetValue<string>()
            ?? throw new ArgumentException($"--task is required when --adapter {src.AdapterDir} is an adapter folder: the source/target file it was trained on");
        var model = modelName ?? src.Info.BaseName ?? throw new ArgumentException($"{src.AdapterDir}: the adapter names no base model; pass --model");
        model = GenerateCommand.BartModel(model);
        var (adapted, disabled, recipe, pairs) = Seq2SeqFineTune.Evaluate(model, src.AdapterDir, taskName, batchSize, device, maxTokens);
        static JsonObject Scores(Evaluation e) => new()
        {
            ["bleu"] = e.Metrics["bleu"], ["exact_match"] = e.Metrics["exact_match"], ["token_accuracy"] = e.Metrics["token_accuracy"], ["loss"] = e.Loss,
        };
        if (asJson)
        {
            Console.WriteLine(new JsonObject
            {
                ["adapter"] = src.AdapterDir, ["task"] = taskName, ["model"] = model, ["recipe"] = recipe, ["test_set"] = "the file's held-out pairs",
                ["examples"] = pairs, ["adapted"] = Scores(adapted), ["adapters_disabled"] = Scores(disabled),
            }.ToJsonString());
            return 0;
        }
        var t = new Table().AddColumns("model", "BLEU-4", "exact match", "token accuracy", "test loss");
        void Row(string name, Evaluation e) => t.AddRow(name, $"{e.Metrics["bleu"]:F2}", $"{e.Metrics["exact_match"]:P1}", $"{e.Metrics["token_accuracy"]:P1}", $"{e.Loss:F4}");
        Row($"{Cli.Escape(Path.GetFileName(Path.TrimEndingDirectorySeparator(model)))} + {Cli.Escape(recipe)}", adapted);
        Row("adapters disabled", disabled);
        AnsiConsole.MarkupLine(Cli.Escape($"{Path.GetFileName(taskName)}: {pairs} held-out pairs (the share training holds out)"));
        AnsiConsole.Write(t);
        return 0;
    }

    /// <summary>A field of the final line of a run's metrics.jsonl (the task it was trained on, its max tokens).</summary>
    private static JsonElement? RunFinal(string runDir, string key)
    {
        var path = Path.Combine(runDir, FineTune.MetricsFile);
        var final = File.Exists(path) ? File.ReadLines(path).LastOrDefault(l => l.Contains("\"final\"")) : null;
        if (final is null) throw new ArgumentException($"{path}: no final result to read the run's settings from; pass --task");
        using var doc = JsonDocument.Parse(final);
        return doc.RootElement.TryGetProperty(key, out var v) ? v.Clone() : null;
    }
}
