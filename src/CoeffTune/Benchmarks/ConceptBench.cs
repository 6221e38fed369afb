using System.Text.Json;
using System.Text.Json.Serialization;
using CoeffTune.Assets;
using CoeffTune.Data;
using CoeffTune.Diffusion;
using CoeffTune.IO;
using CoeffTune.Methods.Coeff;
using CoeffTune.Methods.Dora;
using CoeffTune.Methods.Lora;
using CoeffTune.Metrics;
using CoeffTune.Training;
using static TorchSharp.torch;

namespace CoeffTune.Benchmarks;

/// <summary>One concept: a few images of a class the diffusion model never saw, alike enough to be one "subject".</summary>
public sealed record ConceptSpec(string Name, int Index, string Task, int Label, int JudgeClass, string Medium, int[] Indices);

/// <summary>A prompt of the concept bench and the attribute it asks for.</summary>
public sealed record ConceptPrompt(string Text, ImageAttribute Attribute);

/// <summary>
/// The concept bench's fixed setup (the paper's Table 3 at small scale), chosen before any result was seen:
/// <list type="bullet">
/// <item>Concepts: 10, from the classes held out of <c>dit-fmnist</c>'s pretraining (3 bags, 3 ankle boots, 2 eights,
/// 2 nines), 4 to 9 images each (4, 5, ..., 9, 4, 5, 6, 7). A concept is a seeded anchor image of its class and its
/// nearest neighbours in <c>vit-fmnist</c> features within the class, so its images look like one subject, as a
/// DreamBooth subject's photos do.</item>
/// <item>Training: the paper's SDXL settings, rank-2 LoRA or DoRA on the queries and values of every self- and
/// cross-attention, Adam(W, no weight decay) at 3e-4, 200 steps, batch 4, the token "sks" in "a photo of sks" ("an
/// image of sks" for digits, as pretraining names them). Coefficient dropout 0.1, as on top of every weight-based
/// method in the other benches (the paper does not give it for SDXL). Seeds 0, 1, 2.</item>
/// <item>Prompts: 25 per concept, <see cref="Prompts"/>; 4 images each, 25 sampling steps (half the sampler's default,
/// so that the 120 runs' 12,000 images fit about an hour of one CPU core) with the sampler's defaults, eta 1 and
/// guidance 1.5 (chosen on the base model's samples of its 64 pretraining captions, before any concept was trained on
/// it: see <see cref="SamplerOptions.Guidance"/>), the sampling noise seeded by the run's seed and the concept, so
/// every method draws from the same noise.</item>
/// <item>Metrics: fidelity (mean cosine similarity of <c>vit-fmnist</c> features between generated and concept
/// images, as DINO/CLIP-I scores), alignment (the judge names the prompt's attribute), diversity (mean pairwise
/// 1 - cosine similarity among one prompt's images), and recognition (the judge names the concept's class).</item>
/// </list>
/// </summary>
public sealed record ConceptBenchSetup
{
    public string Name { get; init; } = "concept";
    public IReadOnlyList<BenchMethod> Methods { get; init; } = DefaultMethods();
    public int Concepts { get; init; } = 10;
    public int Seeds { get; init; } = 3;
    public int ImagesPerPrompt { get; init; } = 4;
    /// <summary>Prompts per concept taken from <see cref="Prompts"/> (all 25 by default).</summary>
    public int PromptCount { get; init; } = 25;
    public ConceptOptions Training { get; init; } = new();
    public SamplerOptions Sampler { get; init; } = new() { Steps = 25, BatchSize = 100 };
    public DitPretrainOptions Dit { get; init; } = new();
    public JudgeOptions Judge { get; init; } = new();
    /// <summary>Images generated per pretraining caption for the base model's sample quality.</summary>
    public int QualityImagesPerCaption { get; init; } = 8;
    /// <summary>Images of each class searched for a concept's nearest neighbours (a seeded sample).</summary>
    public int NeighbourPool { get; init; } = 2000;
    public bool Quick { get; init; }

    public static List<BenchMethod> DefaultMethods(int rank = 2)
    {
        var lora = new LoraConfig(rank: rank, alpha: rank);
        var coeff = new CoeffConfig(dropout: 0.1);
        return [new(lora), new(coeff, lora), new(new DoraConfig(lora)), new(coeff, new DoraConfig(lora))];
    }

    /// <summary>The full setup, or the smoke-test one: 2 concepts, one seed, 20 steps, 5 prompts of 2 images, 10 DDIM steps, and small pretrainings.</summary>
    public static ConceptBenchSetup Create(bool quick) => quick
        ? new ConceptBenchSetup
        {
            Concepts = 2, Seeds = 1, ImagesPerPrompt = 2, PromptCount = 5, QualityImagesPerCaption = 1, NeighbourPool = 200, Quick = true,
            Training = new ConceptOptions { Steps = 20, LearningRate = 3e-3 },
            Sampler = new SamplerOptions { Steps = 10, BatchSize = 100 },
            Dit = new DitPretrainOptions { Steps = 150, LearningRate = 1e-3 },
            Judge = new JudgeOptions { ImagesPerSource = 1000, Epochs = 1, TestImagesPerSource = 200, Backbone = new PretrainOptions { TrainImages = 2000, Epochs = 1 } },
        }
        : new ConceptBenchSetup();

    /// <summary>Only the methods labelled in <paramref name="methods"/> and the given seed count; unknown labels are named in the error.</summary>
    public ConceptBenchSetup Select(IReadOnlyList<string>? methods, int? seeds)
    {
        var s = this;
        if (methods is { Count: > 0 })
        {
            var unknown = methods.Where(m => Methods.All(x => x.Label != m)).ToList();
            if (unknown.Count > 0)
                throw new ArgumentException($"unknown method label(s) {string.Join(", ", unknown)}; this bench has {string.Join(", ", Methods.Select(m => m.Label))}", nameof(methods));
            s = s with { Methods = Methods.Where(m => methods.Contains(m.Label)).ToList() };
        }
        if (seeds is int n)
        {
            if (n < 1) throw new ArgumentOutOfRangeException(nameof(seeds), n, "seeds must be positive");
            s = s with { Seeds = n };
        }
        return s;
    }

    /// <summary>
    /// The setup with another training budget (steps, learning rate; null keeps the setup's). A changed budget gets its
    /// own name, "concept-{steps}-{lr}", so its results, files and default folder never mix with the fixed setup's.
    /// </summary>
    public ConceptBenchSetup WithBudget(int? steps, double? learningRate)
    {
        if (steps is null && learningRate is null) return this;
        var training = (Training with { Steps = steps ?? Training.Steps, LearningRate = learningRate ?? Training.LearningRate }).Validate();
        if (training == Training) return this;
        return this with { Training = training, Name = FormattableString.Invariant($"{Name}-{training.Steps}-{training.LearningRate:G}") };
    }

    /// <summary>The classes concepts come from, in order: (task, label, name, medium).</summary>
    public static readonly IReadOnlyList<(string Task, int Label, string Name, string Medium)> ConceptClasses =
    [
        ("fashion-mnist", 8, "bag", "photo"), ("fashion-mnist", 8, "bag", "photo"), ("fashion-mnist", 8, "bag", "photo"),
        ("fashion-mnist", 9, "ankle-boot", "photo"), ("fashion-mnist", 9, "ankle-boot", "photo"), ("fashion-mnist", 9, "ankle-boot", "photo"),
        ("mnist", 8, "eight", "image"), ("mnist", 8, "eight", "image"), ("mnist", 9, "nine", "image"), ("mnist", 9, "nine", "image"),
    ];

    /// <summary>
    /// The 25 prompts of a concept: each attribute (plain, rotated, inverted, small) with six words for a picture (the
    /// concept's own medium as in pretraining, then "picture", "drawing", "snapshot", "rendering", "shot"), and the token alone.
    /// </summary>
    public static IReadOnlyList<ConceptPrompt> Prompts(string token, string medium)
    {
        string[] media = [medium, "picture", "drawing", "snapshot", "rendering", "shot"];
        var prompts = new List<ConceptPrompt>();
        foreach (var m in media)
            foreach (var a in Enum.GetValues<ImageAttribute>())
                prompts.Add(new ConceptPrompt(CaptionedCorpus.Caption(a, m, token), a));
        prompts.Add(new ConceptPrompt(token, ImageAttribute.Plain));
        return prompts;
    }
}

/// <summary>The metrics of one set of generated images for one concept.</summary>
public sealed record ConceptScores(double Fidelity, double Alignment, double Diversity, double Recognition);

/// <summary>One run's outcome, as its result.json holds it.</summary>
public sealed record ConceptRunResult(string Concept, string Method, int Seed, ConceptScores Scores, long Trainable, double TrainSeconds,
    double SampleSeconds, double FinalLoss);

/// <summary>The base model's sample quality on its own pretraining captions.</summary>
public sealed record SampleQuality(int Images, double Recognition, double AttributeAlignment, double Frechet, double FrechetRealVsReal,
    double JudgeClassAccuracy, double JudgeAttributeAccuracy, double Seconds, Dictionary<string, double>? RecognitionByClass = null);

/// <summary>A method's summary: each metric's mean over concepts and seeds, and the spread of the per-seed means.</summary>
public sealed record ConceptMethodSummary(string Method, long Trainable, ConceptScores Mean, ConceptScores SeedStd, int Runs, double MeanTrainSeconds);

public sealed record ConceptBenchReport(ConceptBenchSetup Setup, SampleQuality Quality, IReadOnlyList<ConceptMethodSummary> Rows,
    ConceptMethodSummary BaseRow, IReadOnlyList<ConceptRunResult> Runs, string Markdown, string MarkdownPath, string JsonPath, IReadOnlyList<string> Grids);

/// <summary>
/// <c>bench concept</c>: concept customisation of <c>dit-fmnist</c> (the paper's SDXL experiment, Table 3, at small
/// scale). Each (concept, method, seed) run trains an adapter with <see cref="ConceptTuning"/> on the concept's images
/// (written as PNG files into &lt;out&gt;/concepts/&lt;name&gt;, which <c>train --task concept:DIR</c> reads as well),
/// generates 4 images for each of 25 prompts and scores them. Runs live in &lt;out&gt;/runs/&lt;concept&gt;/&lt;method&gt;/seed&lt;N&gt;;
/// a finished one is read back, not run again.
/// </summary>
public static class ConceptBench
{
    public const string ResultFile = "result.json";
    public const string BaseLabel = "none (base model)";

    public static ConceptBenchReport Run(ConceptBenchSetup s, string outDir, string command, TextWriter log, AssetCache? cache = null)
    {
        cache ??= AssetCache.Default;
        Directory.CreateDirectory(outDir);
        using var pipeline = TextToImage.Load(s.Dit.CacheName, cache, log, template: s.Dit);
        using var judge = ImageJudge.Ensure(s.Judge, cache, log);
        var backbone = VitPretraining.Ensure(s.Judge.Backbone, cache, log);
        using var features = new ImageFeatures(backbone);
        log.WriteLine($"{s.Dit.CacheName}: validation noise MSE {pipeline.Base.ValidationLoss:F4}; judge: class {judge.Info.ClassAccuracy:P1}, attribute {judge.Info.AttributeAccuracy:P1} on held-out images");

        var quality = Quality(s, pipeline, judge, features, outDir, cache, log);
        // Each source's training images, loaded once for all concepts.
        var loaded = new Dictionary<string, ImageDataset>();
        ImageDataset TrainImages(string task) => loaded.TryGetValue(task, out var d) ? d : loaded[task] = TaskCatalog.Load(task, cache, log).ImageTrain;
        var concepts = Concepts(s, features, TrainImages);
        var conceptDirs = concepts.ToDictionary(c => c.Name, c => WriteConcept(c, outDir, TrainImages(c.Task)));
        var runs = new List<ConceptRunResult>();
        var baseRuns = new List<ConceptRunResult>();
        int total = concepts.Count * s.Methods.Count * s.Seeds, done = 0;
        foreach (var concept in concepts)
        {
            using var conceptImages = ConceptImages(conceptDirs[concept.Name], pipeline);
            using var conceptFeatures = features.Of(conceptImages);
            var prompts = ConceptBenchSetup.Prompts(s.Training.Token, concept.Medium).Take(s.PromptCount).ToList();
            for (int seed = 0; seed < s.Seeds; seed++)
                baseRuns.Add(BaseRun(s, pipeline, judge, features, concept, conceptFeatures, prompts, seed, outDir));
            foreach (var m in s.Methods)
                for (int seed = 0; seed < s.Seeds; seed++)
                {
                    done++;
                    bool finished = File.Exists(Path.Combine(RunDir(outDir, concept.Name, m.Label, seed), ResultFile));
                    var row = OneRun(s, pipeline, judge, features, concept, conceptDirs[concept.Name], conceptFeatures, prompts, m, seed, outDir, log);
                    runs.Add(row);
                    if (!finished) log.WriteLine($"[{done}/{total}] {concept.Name} {m.Label} seed {seed}: fidelity {row.Scores.Fidelity:F3}, alignment {row.Scores.Alignment:F3}, " +
                        $"diversity {row.Scores.Diversity:F3}, recognition {row.Scores.Recognition:F3} ({row.TrainSeconds:F0} s training, {row.SampleSeconds:F0} s sampling)");
                }
        }
        var rows = s.Methods.Select(m => Summarise(m.Label, runs.Where(r => r.Method == m.Label).ToList())).ToList();
        var baseRow = Summarise(BaseLabel, baseRuns);
        var md = Markdown(s, quality, rows, baseRow, command, pipeline.Base, judge.Info);
        var mdPath = Path.Combine(outDir, $"{s.Name}.md");
        var jsonPath = Path.Combine(outDir, $"{s.Name}.json");
        AtomicFile.WriteAllText(mdPath, md);
        WriteJson(jsonPath, s, quality, rows, baseRow, runs, baseRuns, command, pipeline.Base, judge.Info, concepts);
        var grids = s.Methods.Select(m => m.Label).Prepend(BaseLabel).Select(label => Grid(s, concepts, conceptDirs, pipeline, label, outDir)).ToList();
        return new ConceptBenchReport(s, quality, rows, baseRow, runs, md, mdPath, jsonPath, grids);
    }

    /// <summary>
    /// The base model's samples for every pretraining caption (16 classes x 4 attributes): how often the judge names
    /// the caption's class and attribute, and the Fréchet distance of their features to real images of the same captions
    /// (test images, the attribute applied), beside the distance between two such real sets, its floor.
    /// </summary>
    public static SampleQuality Quality(ConceptBenchSetup s, TextToImage pipeline, ImageJudge judge, ImageFeatures features, string outDir, AssetCache cache, TextWriter log)
    {
        var path = Path.Combine(outDir, "quality.json");
        if (File.Exists(path)) return Read<SampleQuality>(path);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var fashion = TaskCatalog.Load("fashion-mnist", cache, log).ImageTest;
        var mnist = TaskCatalog.Load("mnist", cache, log).ImageTest;
        var captions = new List<(string Caption, int JudgeClass, ImageAttribute Attribute, ImageDataset Source, int Label)>();
        foreach (var (source, offset, medium, noun) in new (ImageDataset, int, string, Func<int, string?>)[]
                 { (fashion, 0, "photo", CaptionedCorpus.FashionNoun), (mnist, ImageJudge.DigitOffset, "image", CaptionedCorpus.DigitNoun) })
            for (int label = 0; label < 10; label++)
                if (noun(label) is { } n)
                    foreach (var attribute in Enum.GetValues<ImageAttribute>())
                        captions.Add((CaptionedCorpus.Caption(attribute, medium, n), label + offset, attribute, source, label));
        int k = s.QualityImagesPerCaption;
        var prompts = captions.SelectMany(c => Enumerable.Repeat(c.Caption, k)).ToList();
        using var generated = pipeline.Generate(prompts, seed: 1, s.Sampler);
        var (classes, attributes) = judge.Predict(generated);
        double recognition = 0, alignment = 0;
        var byClass = new Dictionary<string, double>();
        for (int i = 0; i < prompts.Count; i++)
        {
            var c = captions[i / k];
            string name = ImageJudge.ClassNames[c.JudgeClass];
            byClass.TryAdd(name, 0);
            if (classes[i] == c.JudgeClass) { recognition++; byClass[name]++; }
            if (attributes[i] == c.Attribute) alignment++;
        }
        int perClass = k * Enum.GetValues<ImageAttribute>().Length;
        foreach (var name in byClass.Keys.ToList()) byClass[name] /= perClass;
        // Two disjoint real sets with the same captions, for the distance and its floor.
        var rng = new Random(7);
        var realA = new List<float>();
        var realB = new List<float>();
        foreach (var c in captions)
        {
            var pool = Enumerable.Range(0, c.Source.Count).Where(i => c.Source.Labels[i] == c.Label).ToArray();
            rng.Shuffle(pool);
            for (int j = 0; j < 2 * k; j++)
                (j < k ? realA : realB).AddRange(CaptionedCorpus.Apply(c.Attribute, c.Source.Image(pool[j]), 1, c.Source.Height));
        }
        int side = fashion.Height;
        using var a = tensor(realA.ToArray(), new long[] { prompts.Count, 1, side, side }) * 2 - 1;
        using var b = tensor(realB.ToArray(), new long[] { prompts.Count, 1, side, side }) * 2 - 1;
        using var fg = features.Of(generated);
        using var fa = features.Of(a);
        using var fb = features.Of(b);
        var q = new SampleQuality(prompts.Count, recognition / prompts.Count, alignment / prompts.Count,
            prompts.Count > fg.shape[1] ? FrechetDistance.Between(fg, fa) : double.NaN,
            prompts.Count > fg.shape[1] ? FrechetDistance.Between(fb, fa) : double.NaN,
            judge.Info.ClassAccuracy, judge.Info.AttributeAccuracy, clock.Elapsed.TotalSeconds, byClass);
        ImageGrid.WriteGrid(generated, Path.Combine(outDir, "quality-samples.png"), 2, columns: Math.Max(k, 4) * 4);
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(q, Json));
        log.WriteLine($"base model: the judge recognises the caption's class in {q.Recognition:P1} and its attribute in {q.AttributeAlignment:P1} of {q.Images} samples; " +
            $"Fréchet distance {q.Frechet:F2} (real vs real {q.FrechetRealVsReal:F2}) in {q.Seconds:F0} s");
        return q;
    }

    /// <summary>The concepts: for each of <see cref="ConceptBenchSetup.ConceptClasses"/> (up to the setup's count), a seeded anchor and its nearest neighbours.</summary>
    public static List<ConceptSpec> Concepts(ConceptBenchSetup s, ImageFeatures features, Func<string, ImageDataset> trainImages)
    {
        var list = new List<ConceptSpec>();
        var taken = new HashSet<(string, int)>();
        var counts = new Dictionary<string, int>();
        foreach (var (k, (task, label, name, medium)) in ConceptBenchSetup.ConceptClasses.Take(s.Concepts).Index())
        {
            var data = trainImages(task);
            var rng = new Random(1000 + k);
            var pool = Enumerable.Range(0, data.Count).Where(i => data.Labels[i] == label && !taken.Contains((task, i))).ToArray();
            rng.Shuffle(pool);
            pool = pool.Take(s.NeighbourPool).ToArray();
            int size = 4 + k % 6;
            using var images = ImageJudge.FromUnit(data.Subset(pool));
            using var f = features.Of(images);
            using var unit = nn.functional.normalize(f, dim: 1);
            using var sims = unit.matmul(unit[0].unsqueeze(1)).squeeze(1);
            using var order = sims.argsort(descending: true);
            var chosen = order.data<long>().Take(size).Select(i => pool[i]).ToArray();
            foreach (var i in chosen) taken.Add((task, i));
            counts[name] = counts.GetValueOrDefault(name) + 1;
            int judgeClass = label + (task == "mnist" ? ImageJudge.DigitOffset : 0);
            list.Add(new ConceptSpec($"{name}-{counts[name]}", k, task, label, judgeClass, medium, chosen));
        }
        return list;
    }

    /// <summary>Writes a concept's images (from <paramref name="trainImages"/>, its task's training images) as PNG files into &lt;out&gt;/concepts/&lt;name&gt; (once) and returns the folder.</summary>
    public static string WriteConcept(ConceptSpec c, string outDir, ImageDataset trainImages)
    {
        var dir = Path.Combine(outDir, "concepts", c.Name);
        if (Directory.Exists(dir) && Directory.GetFiles(dir, "*.png").Length == c.Indices.Length) return dir;
        var data = trainImages.Subset(c.Indices);
        using var images = ImageJudge.FromUnit(data);
        ImageGrid.WriteEach(images, dir, "image-");
        return dir;
    }

    private static Tensor ConceptImages(string dir, TextToImage pipeline)
    {
        var (pixels, count) = ConceptTuning.ReadImages(dir, pipeline.Model.Config);
        var c = pipeline.Model.Config;
        return tensor(pixels, new long[] { count, c.Channels, c.ImageSize, c.ImageSize }) * 2 - 1;
    }

    private static string RunDir(string outDir, string concept, string label, int seed) =>
        Path.Combine(outDir, "runs", concept, label, $"seed{seed}");

    /// <summary>The sampling seed of a concept and run seed: the same for every method, so methods are compared on the same noise.</summary>
    public static long SamplingSeed(int conceptIndex, int seed) => 1_000 * seed + conceptIndex + 17;

    private static ConceptRunResult OneRun(ConceptBenchSetup s, TextToImage basePipeline, ImageJudge judge, ImageFeatures features, ConceptSpec concept,
        string conceptDir, Tensor conceptFeatures, IReadOnlyList<ConceptPrompt> prompts, BenchMethod m, int seed, string outDir, TextWriter log)
    {
        var dir = RunDir(outDir, concept.Name, m.Label, seed);
        var resultPath = Path.Combine(dir, ResultFile);
        if (File.Exists(resultPath)) return Read<ConceptRunResult>(resultPath);
        // A fresh copy of the base weights for each run; the text encoder is shared.
        var model = DitPretraining.Load(basePipeline.Base);
        var pipeline = new TextToImage(model, basePipeline.Schedule, basePipeline.Encoder, basePipeline.Base);
        try
        {
            var options = s.Training with { Seed = seed, Medium = concept.Medium };
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
            var trained = ConceptTuning.Run(pipeline, conceptDir, m.Configs.ToArray(), options, dir, s.Dit.CacheName);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var (scores, images) = Score(s, pipeline, judge, features, concept, conceptFeatures, prompts, seed);
            double sampleSeconds = clock.Elapsed.TotalSeconds;
            using (images) WriteSamples(images, dir, s);
            var row = new ConceptRunResult(concept.Name, m.Label, seed, scores, trained.Peft.Report().Total, trained.Training.Seconds, sampleSeconds,
                trained.Training.BestValidation.Loss);
            var ckpt = Path.Combine(dir, Trainer.CheckpointFolder);
            if (Directory.Exists(ckpt)) Directory.Delete(ckpt, true);
            AtomicFile.WriteAllText(resultPath, JsonSerializer.Serialize(row, Json));
            return row;
        }
        finally { model.Dispose(); }
    }

    private static ConceptRunResult BaseRun(ConceptBenchSetup s, TextToImage pipeline, ImageJudge judge, ImageFeatures features, ConceptSpec concept,
        Tensor conceptFeatures, IReadOnlyList<ConceptPrompt> prompts, int seed, string outDir)
    {
        var dir = RunDir(outDir, concept.Name, BaseLabel, seed);
        var resultPath = Path.Combine(dir, ResultFile);
        if (File.Exists(resultPath)) return Read<ConceptRunResult>(resultPath);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (scores, images) = Score(s, pipeline, judge, features, concept, conceptFeatures, prompts, seed);
        Directory.CreateDirectory(dir);
        using (images) WriteSamples(images, dir, s);
        var row = new ConceptRunResult(concept.Name, BaseLabel, seed, scores, 0, 0, clock.Elapsed.TotalSeconds, double.NaN);
        AtomicFile.WriteAllText(resultPath, JsonSerializer.Serialize(row, Json));
        return row;
    }

    /// <summary>Generates <see cref="ConceptBenchSetup.ImagesPerPrompt"/> images per prompt and scores them; the images come back too, prompt by prompt.</summary>
    private static (ConceptScores, Tensor) Score(ConceptBenchSetup s, TextToImage pipeline, ImageJudge judge, ImageFeatures features, ConceptSpec concept,
        Tensor conceptFeatures, IReadOnlyList<ConceptPrompt> prompts, int seed)
    {
        int k = s.ImagesPerPrompt;
        var texts = prompts.SelectMany(p => Enumerable.Repeat(p.Text, k)).ToList();
        var images = pipeline.Generate(texts, SamplingSeed(concept.Index, seed), s.Sampler);
        using var f = features.Of(images);
        var (classes, attributes) = judge.Predict(images);
        var expected = prompts.SelectMany(p => Enumerable.Repeat(p.Attribute, k)).ToArray();
        var scores = new ConceptScores(
            Fidelity(f, conceptFeatures),
            Enumerable.Range(0, texts.Count).Count(i => attributes[i] == expected[i]) / (double)texts.Count,
            Diversity(f, k),
            classes.Count(c => c == concept.JudgeClass) / (double)texts.Count);
        return (scores, images);
    }

    /// <summary>Mean cosine similarity over every pair of a generated image's and a reference image's features.</summary>
    public static double Fidelity(Tensor generated, Tensor reference)
    {
        using var scope = NewDisposeScope();
        var g = nn.functional.normalize(generated.to(ScalarType.Float64), dim: 1);
        var r = nn.functional.normalize(reference.to(ScalarType.Float64), dim: 1);
        return g.matmul(r.t()).mean().item<double>();
    }

    /// <summary>
    /// The mean, over groups of <paramref name="perGroup"/> consecutive rows (one prompt's images), of the mean pairwise
    /// 1 - cosine similarity within the group.
    /// </summary>
    public static double Diversity(Tensor features, int perGroup)
    {
        if (perGroup < 2) return double.NaN;
        if (features.shape[0] % perGroup != 0) throw new ArgumentException($"{features.shape[0]} feature rows do not split into groups of {perGroup}");
        using var scope = NewDisposeScope();
        var unit = nn.functional.normalize(features.to(ScalarType.Float64), dim: 1).view(-1, perGroup, features.shape[1]);
        var sims = unit.matmul(unit.transpose(1, 2));
        var offDiagonal = (sims.sum(new long[] { 1, 2 }) - sims.diagonal(0, 1, 2).sum(1)) / (perGroup * (perGroup - 1));
        return (1 - offDiagonal).mean().item<double>();
    }

    /// <summary>Per metric: the mean over every run, and the standard deviation of the per-seed means (over concepts).</summary>
    public static ConceptMethodSummary Summarise(string label, IReadOnlyList<ConceptRunResult> runs)
    {
        if (runs.Count == 0) throw new ArgumentException($"no runs for {label}");
        ConceptScores Mean(IEnumerable<ConceptScores> xs)
        {
            var l = xs.ToList();
            return new ConceptScores(l.Average(x => x.Fidelity), l.Average(x => x.Alignment), l.Average(x => x.Diversity), l.Average(x => x.Recognition));
        }
        var perSeed = runs.GroupBy(r => r.Seed).Select(g => Mean(g.Select(r => r.Scores))).ToList();
        static double Std(IReadOnlyList<double> v)
        {
            if (v.Count < 2) return 0;
            double m = v.Average();
            return Math.Sqrt(v.Sum(x => (x - m) * (x - m)) / (v.Count - 1));
        }
        var std = new ConceptScores(Std(perSeed.Select(x => x.Fidelity).ToList()), Std(perSeed.Select(x => x.Alignment).ToList()),
            Std(perSeed.Select(x => x.Diversity).ToList()), Std(perSeed.Select(x => x.Recognition).ToList()));
        return new ConceptMethodSummary(label, runs.Max(r => r.Trainable), Mean(runs.Select(r => r.Scores)), std, runs.Count, runs.Average(r => r.TrainSeconds));
    }

    private static string Markdown(ConceptBenchSetup s, SampleQuality q, IReadOnlyList<ConceptMethodSummary> rows, ConceptMethodSummary baseRow, string command,
        PretrainedDit dit, JudgeInfo judge)
    {
        var sb = new System.Text.StringBuilder();
        sb.AppendLine($"## {s.Name}");
        sb.AppendLine();
        sb.AppendLine($"Command: `{command}`. Model: {s.Dit.CacheName} ({dit.Steps} pretraining steps, validation noise MSE {dit.ValidationLoss:F4}). " +
            $"{s.Concepts} concepts, {s.PromptCount} prompts x {s.ImagesPerPrompt} images each; {s.Training.Steps} steps, batch {s.Training.BatchSize}, lr {s.Training.LearningRate}; " +
            $"DDIM {s.Sampler.Steps} steps, guidance {s.Sampler.Guidance}; {s.Seeds} seed(s). Mean over concepts and seeds (± std of the per-seed means).");
        sb.AppendLine();
        sb.AppendLine($"Base model's samples of its {q.Images / s.QualityImagesPerCaption} pretraining captions ({q.Images} images): the judge names the class in {q.Recognition:P1} " +
            $"and the attribute in {q.AttributeAlignment:P1} (the judge itself: {judge.ClassAccuracy:P1} and {judge.AttributeAccuracy:P1} on real held-out images); " +
            $"Fréchet distance on vit-fmnist features {q.Frechet:F2} (two real sets: {q.FrechetRealVsReal:F2}).");
        if (q.RecognitionByClass is { Count: > 0 } byClass)
            sb.AppendLine($"By class: {string.Join(", ", byClass.Select(kv => $"{kv.Key} {kv.Value:P0}"))}.");
        sb.AppendLine();
        sb.AppendLine("| method | trainable | fidelity | alignment | diversity | recognition |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|");
        foreach (var r in rows.Prepend(baseRow))
            sb.AppendLine($"| {r.Method} | {r.Trainable:N0} | {r.Mean.Fidelity:F3} ± {r.SeedStd.Fidelity:F3} | {r.Mean.Alignment:F3} ± {r.SeedStd.Alignment:F3} | " +
                $"{r.Mean.Diversity:F3} ± {r.SeedStd.Diversity:F3} | {r.Mean.Recognition:F3} ± {r.SeedStd.Recognition:F3} |");
        return sb.ToString();
    }

    private static void WriteJson(string path, ConceptBenchSetup s, SampleQuality q, IReadOnlyList<ConceptMethodSummary> rows, ConceptMethodSummary baseRow,
        IReadOnlyList<ConceptRunResult> runs, IReadOnlyList<ConceptRunResult> baseRuns, string command, PretrainedDit dit, JudgeInfo judge, IReadOnlyList<ConceptSpec> concepts)
    {
        object Entry(ConceptMethodSummary r, IReadOnlyList<ConceptRunResult> rs) => new
        {
            fidelity = r.Mean.Fidelity, alignment = r.Mean.Alignment, diversity = r.Mean.Diversity, recognition = r.Mean.Recognition,
            seed_std = r.SeedStd, trainable = r.Trainable, runs = r.Runs, mean_train_seconds = r.MeanTrainSeconds,
            concepts = rs.Where(x => x.Method == r.Method).GroupBy(x => x.Concept).ToDictionary(g => g.Key, g => new
            {
                fidelity = g.Average(x => x.Scores.Fidelity), alignment = g.Average(x => x.Scores.Alignment),
                diversity = g.Average(x => x.Scores.Diversity), recognition = g.Average(x => x.Scores.Recognition),
            }),
        };
        var methods = rows.ToDictionary(r => r.Method, r => Entry(r, runs));
        var doc = new
        {
            bench = s.Name, command, quick = s.Quick,
            model = new { name = s.Dit.CacheName, steps = dit.Steps, validation_mse = dit.ValidationLoss, train_loss = dit.TrainLoss, seconds = dit.Seconds },
            judge, sample_quality = q,
            setup = new
            {
                concepts = concepts.Select(c => new { c.Name, c.Task, c.Label, images = c.Indices.Length, train_indices = c.Indices }),
                prompts = s.PromptCount, images_per_prompt = s.ImagesPerPrompt, seeds = s.Seeds, steps = s.Training.Steps, batch_size = s.Training.BatchSize,
                learning_rate = s.Training.LearningRate, token = s.Training.Token, sampler = s.Sampler,
                recipes = s.Methods.ToDictionary(m => m.Label, m => m.Options),
            },
            base_model = Entry(baseRow, baseRuns),
            methods,
        };
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(doc, Json));
    }

    /// <summary>
    /// A grid per method: a row per concept (seed 0): its first image, then the first image of each of the first
    /// eight prompts; written as &lt;out&gt;/&lt;name&gt;-&lt;method&gt;.png.
    /// </summary>
    private static string Grid(ConceptBenchSetup s, IReadOnlyList<ConceptSpec> concepts, Dictionary<string, string> dirs, TextToImage pipeline, string label, string outDir)
    {
        int shown = Math.Min(8, s.PromptCount);
        var tiles = new List<Tensor>();
        foreach (var c in concepts)
        {
            using var real = ConceptImages(dirs[c.Name], pipeline);
            tiles.Add(real.narrow(0, 0, 1).clone());
            var pixels = ReadSamples(RunDir(outDir, c.Name, label, 0));
            for (int p = 0; p < shown; p++) tiles.Add(pixels.narrow(0, p * s.ImagesPerPrompt, 1).clone());
            pixels.Dispose();
        }
        using var all = cat(tiles, 0);
        foreach (var t in tiles) t.Dispose();
        var safe = string.Concat(label.Select(ch => char.IsLetterOrDigit(ch) || ch is '+' or '-' ? ch : '_'));
        var path = Path.Combine(outDir, $"{s.Name}-{safe}.png");
        ImageGrid.WriteGrid(all, path, 2, columns: shown + 1);
        return path;
    }

    public const string SamplesFile = "samples.safetensors";

    /// <summary>A run's images, prompt by prompt: a PNG grid (a row per prompt) to look at, and the exact values for the method grids.</summary>
    private static void WriteSamples(Tensor images, string dir, ConceptBenchSetup s)
    {
        ImageGrid.WriteGrid(images, Path.Combine(dir, "samples.png"), 2, columns: s.ImagesPerPrompt);
        AtomicFile.Write(Path.Combine(dir, SamplesFile), tmp => TorchSharp.PyBridge.Safetensors.SaveStateDict(tmp, new Dictionary<string, Tensor> { ["images"] = images }));
    }

    private static Tensor ReadSamples(string dir)
    {
        var w = SafetensorsFile.Load(Path.Combine(dir, SamplesFile));
        return w["images"];
    }

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, Converters = { new JsonStringEnumConverter() },
    };

    private static T Read<T>(string path)
    {
        try { return JsonSerializer.Deserialize<T>(File.ReadAllText(path), Json) ?? throw new JsonException("null"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a result of this bench ({e.Message}); delete it to run it again", e); }
    }
}
