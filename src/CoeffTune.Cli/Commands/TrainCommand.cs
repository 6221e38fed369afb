using System.CommandLine;
using CoeffTune.Data;
using CoeffTune.Models;
using CoeffTune.Training;
using Spectre.Console;

namespace CoeffTune.Cli.Commands;

/// <summary><c>coefftune train</c>: fine-tune a real model with a recipe on a task; keep the best adapter.</summary>
public static class TrainCommand
{
    public static Command Create()
    {
        var f = new TrainFlags();
        var cmd = new Command("train", "Fine-tune a pretrained model with a recipe on a task, keeping the adapter with the best validation accuracy");
        f.AddTo(cmd);
        cmd.SetAction(p =>
        {
            var o = f.Read(p);
            if (o.Task.StartsWith(ConceptTrain.TaskPrefix, StringComparison.Ordinal)) return ConceptTrain.Run(p, f, o);
            if (p.GetResult(f.Token) is { Implicit: false }) throw new ArgumentException($"--token applies to concept:DIR tasks only, not --task {o.Task}");
            // A BART pretrained here is named like a cached asset; it is pretrained first when it is not cached.
            if (!Directory.Exists(o.Model) && !File.Exists(o.Model) && BartPretrainOptions.FromCacheName(o.Model) is not null)
                o = o with { Model = BartPretraining.FolderFor(o.Model, log: ConsoleProgress.Log)! };
            if (o.Task == VisionLanguage.VlFineTune.TaskName)
            {
                if (!Seq2SeqFineTune.IsSeq2SeqModel(o.Model))
                    throw new ArgumentException($"--task {o.Task} trains VL-BART: --model must be a BART folder or {BartPretrainOptions.DefaultName}, not {o.Model}");
                return VlTrain.Run(p, f, o);
            }
            if (Seq2SeqFineTune.IsSeq2SeqModel(o.Model)) return Seq2SeqTrain.Run(o, p.GetValue(f.Encoding)!);
            var result = Cli.WithFlags(TrainFlags.Settings, () => ConsoleProgress.Run($"{o.Method} on {o.Task}", obs => FineTune.Run(o, obs, ConsoleProgress.Log)));
            Report.Write(result, o.OutDir);
            Report.PrintSummary(result);
            return 0;
        });
        return cmd;
    }
}

/// <summary>The flags every command that fine-tunes shares.</summary>
public sealed class TrainFlags
{
    /// <summary>The library's names for what these flags set (TrainOptions' properties, the model parameter), for its errors.</summary>
    public static readonly IReadOnlyDictionary<string, string> Settings = new Dictionary<string, string>
    {
        [nameof(TrainOptions.Epochs)] = "--epochs", [nameof(TrainOptions.MaxSteps)] = "--max-steps", [nameof(TrainOptions.BatchSize)] = "--batch-size",
        [nameof(TrainOptions.LearningRate)] = "--lr", [nameof(TrainOptions.WeightDecay)] = "--weight-decay",
        // FineTune.LoadModel's model: the model the run starts from.
        ["model"] = "--model",
    };

    public readonly Option<string> Model = new("--model") { Description = "auto (minilm for text, the ViT pretrained here for images), minilm, arctic-xs, vit-fmnist, a .onnx/.safetensors path, a BART folder or bart-brown (a source/target task, or vl-mini), or dit-fmnist (with concept:DIR)", DefaultValueFactory = _ => "auto" };
    public readonly Option<string> Task = new("--task") { Description = "fashion-mnist, fashion-coarse, mnist, mnist-rotation, digits, spam, brown, a path (image folder, IDX, CSV/TSV/JSONL; with a BART model, source and target columns), vl-mini (with a BART model: four image-to-text tasks, sizes per task), or concept:DIR (a text-to-image model learns \"a photo of sks\" from DIR's images)", Required = true };
    public readonly MethodOptions Methods = new();
    public readonly Option<int> TrainSize = new("--train-size") { Description = "training examples drawn from the task's pool", DefaultValueFactory = _ => 800 };
    public readonly Option<int> ValSize = new("--val-size") { Description = "validation examples (model selection)", DefaultValueFactory = _ => 200 };
    public readonly Option<int?> TestSize = new("--test-size") { Description = "test examples (default: the whole held-out test set)" };
    public readonly Option<int> Epochs = new("--epochs") { Description = "epochs", DefaultValueFactory = _ => 10 };
    public readonly Option<int?> MaxSteps = new("--max-steps") { Description = "stop after this many optimiser steps" };
    public readonly Option<double> Lr = new("--lr") { Description = "learning rate (methods may override theirs)", DefaultValueFactory = _ => 1e-3 };
    public readonly Option<double> Wd = new("--weight-decay") { Description = "AdamW weight decay", DefaultValueFactory = _ => 0.01 };
    public readonly Option<int> BatchSize = new("--batch-size") { Description = "batch size", DefaultValueFactory = _ => 32 };
    public readonly Option<int> Seed = new("--seed") { Description = "seed for the split, initialisation, data order and dropout", DefaultValueFactory = _ => 0 };
    public readonly Option<int> MaxTokens = new("--max-tokens") { Description = "text: tokens kept per example", DefaultValueFactory = _ => 128 };
    public readonly Option<int?> Heads = new("--heads") { Description = "attention heads of a checkpoint file whose config.json does not give them (never guessed)" };
    public readonly Option<string?> Pooling = new("--pooling") { Description = "text: pool token states by cls, mean, max, mean-sqrt-len, last-token or pooler instead of the model's own sentence pooling" };
    public readonly Option<bool> SkipBad = new("--skip-bad") { Description = "image folders: skip (and count) files that do not decode whole, instead of stopping" };
    public readonly Option<string> Encoding = new("--encoding") { Description = "text files: utf-8 (invalid bytes are an error naming the line) or latin-1", DefaultValueFactory = _ => "utf-8" };
    public readonly Option<string> Out = new("--out") { Description = "run folder (adapter, checkpoint, metrics.jsonl, curves.png, report.md)", DefaultValueFactory = _ => "runs/latest" };
    public readonly Option<bool> Resume = new("--resume") { Description = "continue the run in --out from its newest complete checkpoint" };
    public readonly Option<bool> AllowChanges = new("--allow-changes") { Description = "with --resume: continue even where a setting differs from the checkpoint's (otherwise refused, naming it)" };
    public readonly Option<string> Device = new("--device") { Description = "cpu, cuda, cuda:1, ...", DefaultValueFactory = _ => "cpu" };
    public readonly Option<string> Token = new("--token") { Description = "concept:DIR tasks: the rare word that comes to name the concept", DefaultValueFactory = _ => "sks" };
    public readonly Option<string> Vision = new("--vision") { Description = "vl-mini: the frozen vision tower, the ViT pretrained here (vit-fmnist, or vit-fmnist-NxE: N images, E epochs)", DefaultValueFactory = _ => "vit-fmnist" };
    public readonly Option<string> Medium = new("--medium") { Description = "concept:DIR tasks: the word for a picture in the captions, as in pretraining (photo for clothes, image for digits)", DefaultValueFactory = _ => "photo" };

    public void AddTo(Command cmd)
    {
        foreach (var o in new Option[] { Model, Task, TrainSize, ValSize, TestSize, Epochs, MaxSteps, Lr, Wd, BatchSize, Seed, MaxTokens, Heads, Pooling, SkipBad, Encoding, Out, Resume, AllowChanges, Device, Token, Medium, Vision })
            cmd.Options.Add(o);
        Methods.AddTo(cmd);
    }

    public FineTuneOptions Read(ParseResult p)
    {
        var device = p.GetValue(Device)!;
        try { _ = TorchSharp.torch.device(device); }
        catch (Exception) { throw new ArgumentException($"--device '{device}' is not a device (cpu, cuda, cuda:N)"); }
        if (device.StartsWith("cuda") && !TorchSharp.torch.cuda.is_available())
            throw new ArgumentException($"--device {device}: CUDA is not available in this LibTorch build");
        return Cli.WithFlags(Settings, () => new FineTuneOptions
        {
            Model = p.GetValue(Model)!, Task = p.GetValue(Task)!, Method = p.GetValue(Methods.Method)!, MethodOptions = Methods.Read(p),
            TrainSize = p.GetValue(TrainSize), ValidationSize = p.GetValue(ValSize), TestSize = p.GetValue(TestSize),
            MaxTokens = p.GetValue(MaxTokens),
            Heads = p.GetValue(Heads) is { } h ? (h > 0 ? h : throw new ArgumentException($"--heads {h}: must be positive")) : null,
            Pooling = p.GetValue(Pooling) is { } pooling ? SentencePooling.Parse(pooling, "--pooling") : null,
            TaskOptions = new PathTaskOptions { SkipBad = p.GetValue(SkipBad), Encoding = CheckEncoding(p.GetValue(Encoding)!) },
            OutDir = p.GetValue(Out)!, Resume = p.GetValue(Resume), AllowSettingChanges = p.GetValue(AllowChanges),
            CheckpointBoundary = KillAtFromEnvironment(),
            Train = new TrainOptions
            {
                Epochs = p.GetValue(Epochs), MaxSteps = p.GetValue(MaxSteps), LearningRate = p.GetValue(Lr), WeightDecay = p.GetValue(Wd),
                BatchSize = p.GetValue(BatchSize), Seed = p.GetValue(Seed), Device = device,
            }.Validate(),
            Pretrain = new PretrainOptions { Device = device },
        });
    }

    private static string CheckEncoding(string name) =>
        name.Replace("_", "-").ToLowerInvariant() is "utf-8" or "utf8" or "latin-1" or "latin1" or "iso-8859-1"
            ? name : throw new ArgumentException($"--encoding '{name}': expected utf-8 or latin-1");

    /// <summary>
    /// A fault-injection point for tests of crash safety: COEFFTUNE_KILL_AT=BOUNDARY[:N] makes the process kill
    /// itself (SIGKILL, no clean-up) the N-th time (default 1) the checkpoint writer passes BOUNDARY, e.g.
    /// "optimizer.bin" or "renamed" (see CheckpointStore.Boundary).
    /// </summary>
    private static Action<string>? KillAtFromEnvironment()
    {
        var spec = Environment.GetEnvironmentVariable("COEFFTUNE_KILL_AT");
        if (string.IsNullOrEmpty(spec)) return null;
        var parts = spec.Split(':');
        int n = parts.Length > 1 && int.TryParse(parts[1], out var k) ? k : 1;
        int seen = 0;
        return boundary =>
        {
            if (boundary == parts[0] && ++seen == n) System.Diagnostics.Process.GetCurrentProcess().Kill();
        };
    }
}

/// <summary>report.md, curves.png and the console summary of a run.</summary>
public static class Report
{
    public static void Write(FineTuneResult r, string outDir)
    {
        Plots.Curves(r.Training.History, Path.Combine(outDir, "curves.png"), $"{r.Recipe} on {r.Task}");
        var md = $"""
            # {r.Recipe} on {r.Task}

            | | |
            |---|---|
            | model | {r.Model} |
            | recipe | {r.Recipe} |
            | trainable | {r.Trainable} |
            | best validation accuracy | {r.Training.BestValidation.Accuracy:P2} (epoch {r.Training.BestEpoch}) |
            | **test accuracy** | **{r.Test.Accuracy:P2}** ({r.Test.Examples} examples) |
            | test loss | {r.Test.Loss:F4} |
            | steps | {r.Training.Steps} |
            | time | {r.Seconds:F1} s |
            | peak resident memory | {r.PeakRssBytes / 1048576.0:F0} MiB |

            Adapter: `{r.AdapterDir}`; split: `{r.SplitPath}`; per-epoch metrics: `metrics.jsonl`; curves: `curves.png`.

            """;
        Cli.WriteAtomic(Path.Combine(outDir, "report.md"), md);
    }

    public static void PrintSummary(FineTuneResult r)
    {
        var t = new Table().AddColumns("task", "model", "recipe", "trainable", "best val acc", "test acc", "time");
        t.AddRow(r.Task, r.Model, r.Recipe, r.Trainable.Total.ToString("N0"), $"{r.Training.BestValidation.Accuracy:P2}", $"[bold]{r.Test.Accuracy:P2}[/]", $"{r.Seconds:F0} s");
        AnsiConsole.Write(t);
        AnsiConsole.MarkupLine(Markup.Escape(r.Trainable.ToString()));
        AnsiConsole.MarkupLine($"adapter: {Markup.Escape(r.AdapterDir)}");
    }
}
