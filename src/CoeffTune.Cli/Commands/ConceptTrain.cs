using System.CommandLine;
using CoeffTune.Diffusion;
using CoeffTune.Methods;
using CoeffTune.Training;

namespace CoeffTune.Cli.Commands;

/// <summary>
/// <c>coefftune train --model dit-fmnist --task concept:DIR --method coeff+lora</c>: concept customisation of a
/// text-to-image model (DreamBooth-style): the token (--token, default "sks") is bound to the images in DIR, captioned "a photo of sks" (--medium sets "photo").
/// Unless set, the paper's settings apply: 200 steps, batch 4, learning rate 3e-4.
/// </summary>
public static class ConceptTrain
{
    public const string TaskPrefix = "concept:";

    private static readonly Dictionary<string, string> Flags = new()
    {
        [nameof(ConceptOptions.Steps)] = "--max-steps", [nameof(ConceptOptions.LearningRate)] = "--lr", [nameof(ConceptOptions.BatchSize)] = "--batch-size",
        [nameof(ConceptOptions.Token)] = "--token", [nameof(ConceptOptions.Medium)] = "--medium",
    };

    public static int Run(ParseResult p, TrainFlags f, FineTuneOptions o)
    {
        var dir = o.Task[TaskPrefix.Length..];
        if (string.IsNullOrWhiteSpace(dir)) throw new ArgumentException("--task concept:DIR needs the folder of the concept's images");
        var model = o.Model == "auto" ? DitPretraining.CacheName : o.Model;
        var options = new ConceptOptions
        {
            Steps = o.Train.MaxSteps ?? 200,
            BatchSize = p.GetResult(f.BatchSize) is { Implicit: false } ? o.Train.BatchSize : 4,
            LearningRate = p.GetResult(f.Lr) is { Implicit: false } ? o.Train.LearningRate : 3e-4,
            Seed = o.Train.Seed, Device = o.Train.Device, Token = p.GetValue(f.Token)!, Medium = p.GetValue(f.Medium)!,
        };
        // Checked before the model loads (which may pretrain it first).
        CoeffTune.Cli.Cli.WithFlags(Flags, () => options.Validate());
        var methods = Recipe.Parse(o.Method, o.MethodOptions).ToArray();
        var log = ConsoleProgress.Log;
        using var pipeline = TextToImage.NeedsPretraining(model)
            ? ConsoleProgress.Run($"pretraining {model}", (ITrainingObserver observer) => TextToImage.Load(model, log: log, observer: observer))
            : TextToImage.Load(model, log: log);
        var result = CoeffTune.Cli.Cli.WithFlags(Flags,
            () => ConsoleProgress.Run($"{o.Method} on concept {Path.GetFileName(Path.TrimEndingDirectorySeparator(dir))}",
                (ITrainingObserver observer) => ConceptTuning.Run(pipeline, dir, methods, options, o.OutDir, model, observer, log)));
        var last = result.Training.History[^1];
        Console.WriteLine($"{result.Peft.Recipe} on concept '{options.Token}' ({options.Steps} steps): {result.Peft.Report()}; " +
            $"noise MSE on the concept's images {result.Training.BestValidation.Loss:F4} (train loss {last.TrainLoss:F4}), {result.Training.Seconds:F0} s");
        Console.WriteLine($"wrote {result.AdapterDir}; try: coefftune generate-images --model {model} --adapter {result.AdapterDir} --prompt \"{options.Caption}\"");
        return 0;
    }
}
