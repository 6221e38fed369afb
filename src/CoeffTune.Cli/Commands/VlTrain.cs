using System.CommandLine;
using System.Globalization;
using CoeffTune.Training;
using CoeffTune.VisionLanguage;

namespace CoeffTune.Cli.Commands;

/// <summary>
/// <c>coefftune train --model bart-brown --task vl-mini --method coeff+lora</c>: VL-BART fine-tuned on the four
/// image-to-text tasks at once (VQA-, GQA-, NLVR2-style questions and captions on digit and garment images), its
/// best epoch scored on test examples from held-out images. --train-size, --val-size and --test-size count examples
/// per task (defaults 600, 50, 200).
/// </summary>
public static class VlTrain
{
    public static int Run(ParseResult p, TrainFlags f, FineTuneOptions o)
    {
        int PerTask(Option<int> flag, int fallback) => p.GetResult(flag) is { Implicit: false } ? p.GetValue(flag) : fallback;
        var vision = p.GetValue(f.Vision)!;
        var vit = PretrainOptions.FromCacheName(vision, o.Pretrain)
            ?? throw new ArgumentException($"--vision {vision}: not a ViT pretrained here (vit-fmnist, or vit-fmnist-NxE such as vit-fmnist-4000x2)");
        var options = new VlFineTuneOptions
        {
            Model = o.Model, Method = o.Method, MethodOptions = o.MethodOptions,
            TrainPerTask = PerTask(f.TrainSize, 600), ValidationPerTask = PerTask(f.ValSize, 50), TestPerTask = o.TestSize ?? 200,
            Train = o.Train, Vit = vit, OutDir = o.OutDir, Resume = o.Resume, AllowSettingChanges = o.AllowSettingChanges,
        };
        foreach (var (n, flag) in new[] { (options.TrainPerTask, "--train-size"), (options.ValidationPerTask, "--val-size"), (options.TestPerTask, "--test-size") })
            if (n < 1) throw new ArgumentException($"{flag} {n}: the {VlFineTune.TaskName} task needs at least one example per task");
        var result = CoeffTune.Cli.Cli.WithFlags(TrainFlags.Settings,
            () => ConsoleProgress.Run($"{o.Method} on {VlFineTune.TaskName}", obs => VlFineTune.Run(options, obs, ConsoleProgress.Log)));
        var c = CultureInfo.InvariantCulture;
        var best = result.Training.BestValidation;
        Console.WriteLine(string.Create(c, $"{result.Recipe}: best epoch {result.Training.BestEpoch} of {result.Training.History.Count}, validation mean {best.Accuracy:0.##} " +
            $"({result.Training.Seconds:0} s)"));
        var scores = string.Join(", ", result.Test.Select(t => string.Create(c, $"{t.Key} {t.Value:0.##}")));
        Console.WriteLine(string.Create(c, $"test ({options.TestPerTask} examples per task, held-out images): {scores}, mean {result.TestMean:0.##} " +
            $"(exact match % for questions, BLEU-4 for captions)"));
        Console.WriteLine(result.Trainable.ToString());
        Console.WriteLine($"adapter: {result.AdapterDir}");
        return 0;
    }
}
