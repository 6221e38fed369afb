using System.Text.Json;
using CoeffTune.Data;
using CoeffTune.Methods;
using CoeffTune.Models;
using CoeffTune.Training;

namespace CoeffTune.Benchmarks;

/// <summary>Test accuracy of one (task, method, seed) run, as its result.json holds it.</summary>
public sealed record BenchRunResult(string Task, string Method, int Seed, double TestAccuracy, double BestValidation, long Trainable, long HeadParameters, double Seconds);

/// <summary>A finished comparison: its runs, the summary per method, and the files written.</summary>
public sealed record ComparisonReport(BenchSetup Setup, IReadOnlyList<BenchRunResult> Runs, IReadOnlyList<MethodSummary> Rows, string Markdown,
    string MarkdownPath, string JsonPath);

/// <summary>
/// Runs every task x method x seed of a <see cref="BenchSetup"/> with <see cref="FineTune"/>, one folder per run:
/// &lt;out&gt;/runs/&lt;task&gt;/&lt;method label&gt;/seed&lt;N&gt;. A finished run leaves result.json there and is not run
/// again, and an interrupted one resumes from its checkpoint, so an interrupted benchmark continues where it
/// stopped. The summary goes to &lt;out&gt;/&lt;name&gt;.md and &lt;name&gt;.json.
/// </summary>
public static class MethodComparison
{
    public const string RunsFolder = "runs";
    public const string ResultFile = "result.json";

    /// <summary>The folder of one run.</summary>
    public static string RunFolder(string outDir, string task, BenchMethod method, int seed) =>
        Path.Combine(outDir, RunsFolder, task, method.Label, $"seed{seed}");

    /// <summary>The summary table, the JSON with every run, and the chart (which the caller draws) of a setup in <paramref name="outDir"/>.</summary>
    public static (string Markdown, string Json, string Chart) Files(BenchSetup s, string outDir) =>
        (Path.Combine(outDir, $"{s.Name}.md"), Path.Combine(outDir, $"{s.Name}.json"), Path.Combine(outDir, $"{s.Name}.png"));

    /// <summary>Pretrains (or finds cached) the ViT the runs start from when the setup's model is the ViT pretrained here; else null.</summary>
    public static PretrainedVit? Pretrain(BenchSetup s, TextWriter? log = null) =>
        s.PretrainsVit ? VitPretraining.Ensure(s.Pretrain, log: log) : null;

    /// <summary>
    /// The whole comparison: every run not yet finished (each finished one reports a line to <paramref name="log"/>),
    /// forward FLOPs per method, the summary, and its markdown and JSON files, which record <paramref name="command"/>.
    /// </summary>
    public static ComparisonReport Run(BenchSetup s, string outDir, string command, TextWriter log, CancellationToken cancellation = default)
    {
        Directory.CreateDirectory(outDir);
        var pretrained = Pretrain(s, log);
        var runs = RunAll(s, outDir, log, cancellation);
        var rows = BenchReport.Summarise(s, runs, Gflops(s));
        var md = BenchReport.Markdown(s, rows, command);
        var (mdPath, jsonPath, _) = Files(s, outDir);
        IO.AtomicFile.WriteAllText(mdPath, md);
        object? extra = pretrained is not null ? new { pretrain_test_accuracy = pretrained.TestAccuracy } : null;
        BenchReport.Json(jsonPath, s, rows, runs, command, extra);
        return new ComparisonReport(s, runs, rows, md, mdPath, jsonPath);
    }

    /// <summary>Every task x method x seed in order; a run whose result.json exists is read, not run again.</summary>
    public static List<BenchRunResult> RunAll(BenchSetup s, string outDir, TextWriter log, CancellationToken cancellation = default)
    {
        var results = new List<BenchRunResult>();
        int total = s.Tasks.Count * s.Methods.Count * s.Seeds, done = 0;
        foreach (var task in s.Tasks)
            foreach (var m in s.Methods)
                for (int seed = 0; seed < s.Seeds; seed++)
                {
                    done++;
                    var dir = RunFolder(outDir, task, m, seed);
                    var resultPath = Path.Combine(dir, ResultFile);
                    if (File.Exists(resultPath))
                    {
                        results.Add(ReadResult(resultPath));
                        continue;
                    }
                    var o = new FineTuneOptions
                    {
                        Model = s.Model, Task = task, Method = m.Recipe, MethodOptions = m.Options, TrainSize = s.TrainSize,
                        ValidationSize = s.ValidationSize, TestSize = s.TestSize, MaxTokens = s.MaxTokens, OutDir = dir,
                        Train = s.Train with { Seed = seed }, Pretrain = s.Pretrain, Resume = true,
                    };
                    var r = FineTune.Run(o, null, TextWriter.Null, cancellation: cancellation);
                    var row = new BenchRunResult(task, m.Label, seed, r.Test.Accuracy, r.Training.BestValidation.Accuracy,
                        r.Trainable.Total, r.Trainable.Head, r.Seconds);
                    IO.AtomicFile.WriteAllText(resultPath, JsonSerializer.Serialize(row));
                    // The checkpoint only serves an interrupted run; the adapter and metrics stay.
                    var ckpt = Path.Combine(dir, Trainer.CheckpointFolder);
                    if (Directory.Exists(ckpt)) Directory.Delete(ckpt, true);
                    results.Add(row);
                    log.WriteLine($"[{done}/{total}] {task} {m.Label} seed {seed}: test {r.Test.Accuracy:P2} (val {r.Training.BestValidation.Accuracy:P2}, {r.Seconds:F0} s)");
                }
        return results;
    }

    private static BenchRunResult ReadResult(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<BenchRunResult>(File.ReadAllText(path)) ?? throw new JsonException("null");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not a run result ({e.Message}); delete it to run that run again", e);
        }
    }

    /// <summary>Forward GFLOPs per example of each method on the first task's model.</summary>
    public static Dictionary<string, double> Gflops(BenchSetup s)
    {
        var task = TaskCatalog.Load(s.Tasks[0]);
        var flops = new Dictionary<string, double>();
        var idx = new[] { 0 };
        foreach (var m in s.Methods)
        {
            var loaded = FineTune.LoadModel(s.Model, task, s.MaxTokens, s.Pretrain);
            PeftModel.Wrap(loaded.Model, m.Configs.ToArray());
            using var batch = loaded.Source(task.TrainPool).MakeBatch(idx, TorchSharp.torch.CPU);
            flops[m.Label] = FlopCounter.ForwardFlops(loaded.Model, batch, loaded.Model.SequenceLength(batch)) / 1e9;
            loaded.Model.Dispose();
        }
        return flops;
    }
}
