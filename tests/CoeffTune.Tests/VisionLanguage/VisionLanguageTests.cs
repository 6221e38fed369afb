using CoeffTune.Data;
using CoeffTune.Generation;
using CoeffTune.Models;
using CoeffTune.Text;
using CoeffTune.VisionLanguage;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Tests.VisionLanguage;

public sealed class VisionLanguageTests : IDisposable
{
    private readonly TempDir dir = new();
    public void Dispose() => dir.Dispose();

    // One image per class: image i has label i, for digits and garments alike.
    private static readonly int[] OnePerClass = Enumerable.Range(0, 10).ToArray();

    /// <summary>The answer to an example, worked out here from the labels, independently of the generator's own rules.</summary>
    private static string Expected(VlExample e)
    {
        int Label(VlImage im) => im.Index;      // one image per class
        string[] digits = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
        string[] garments = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"];
        var a = e.Images[0];
        return e.Question switch
        {
            "what digit is this?" => digits[Label(a)],
            "what garment is this?" => garments[Label(a)],
            "is the digit even?" => Label(a) is 0 or 2 or 4 or 6 or 8 ? "yes" : "no",
            "is it a rotated shoe?" => a.QuarterTurns != 0 && Label(a) is 5 or 7 or 9 ? "yes" : "no",
            "is the digit larger than five and odd?" => Label(a) is 7 or 9 ? "yes" : "no",
            "the left digit is larger than the right one" => Label(a) > Label(e.Images[1]) ? "true" : "false",
            "the left digit is smaller than the right one" => Label(a) < Label(e.Images[1]) ? "true" : "false",
            "the two digits are the same" => Label(a) == Label(e.Images[1]) ? "true" : "false",
            "both digits are even" => Label(a) % 2 == 0 && Label(e.Images[1]) % 2 == 0 ? "true" : "false",
            VlTasks.CaptionPrompt => (a.Source == VlImageSource.Digit ? $"a handwritten {digits[Label(a)]}" : $"a picture of a {garments[Label(a)]}")
                + a.QuarterTurns switch { 0 => "", 1 => ", rotated to the left", 3 => ", rotated to the right", _ => "?" },
            _ => throw new InvalidOperationException($"unexpected question '{e.Question}'"),
        };
    }

    [Fact]
    public void Every_generated_answer_is_the_one_the_labels_imply_and_a_seed_gives_the_same_examples()
    {
        foreach (var task in VlTasks.Names)
        {
            var examples = VlTasks.Generate(task, 400, OnePerClass, OnePerClass, seed: 7);
            Assert.All(examples, e => Assert.Equal(Expected(e), e.Answer));
            Assert.All(examples, e => Assert.Equal(task == VlTasks.Nlvr2 ? 2 : 1, e.Images.Count));
            Assert.Equal(examples, VlTasks.Generate(task, 400, OnePerClass, OnePerClass, seed: 7), new ExampleComparer());
            Assert.NotEqual(examples, VlTasks.Generate(task, 400, OnePerClass, OnePerClass, seed: 8), new ExampleComparer());
        }
        // The yes/no and true/false answers are not left to a rare class: each answer is at least a fifth of its task.
        foreach (var task in new[] { VlTasks.Gqa, VlTasks.Nlvr2 })
        {
            var answers = VlTasks.Generate(task, 2000, OnePerClass, OnePerClass, seed: 1).GroupBy(e => e.Answer).ToDictionary(g => g.Key, g => g.Count());
            Assert.Equal(2, answers.Count);
            Assert.All(answers.Values, n => Assert.InRange(n, 400, 1600));
        }
        var captions = VlTasks.Generate(VlTasks.Caption, 400, OnePerClass, OnePerClass, seed: 3).Select(e => e.Answer).ToHashSet();
        Assert.Contains("a handwritten seven, rotated to the left", captions);
        Assert.Contains("a picture of a ankle boot, rotated to the right", captions);
    }

    private sealed class ExampleComparer : IEqualityComparer<VlExample>
    {
        public bool Equals(VlExample? a, VlExample? b) => a!.Task == b!.Task && a.Question == b.Question && a.Answer == b.Answer && a.Images.SequenceEqual(b.Images);
        public int GetHashCode(VlExample e) => e.Answer.GetHashCode();
    }

    [Fact]
    public void Scores_are_exact_match_percent_for_questions_and_bleu_for_captions_with_their_mean()
    {
        var img = new VlImage(VlImageSource.Digit, 0, 0);
        var examples = new List<VlExample>
        {
            new(VlTasks.Vqa, [img], "what digit is this?", "zero"),
            new(VlTasks.Vqa, [img], "is the digit even?", "yes"),
            new(VlTasks.Vqa, [img], "is the digit even?", "yes"),
            new(VlTasks.Vqa, [img], "is the digit even?", "yes"),
            new(VlTasks.Caption, [img], VlTasks.CaptionPrompt, "a handwritten zero, rotated to the left"),
        };
        var scores = VlObjective.Score(examples, ["zero", " yes ", "no", "yes!", "a handwritten zero, rotated to the left"]);
        Assert.Equal(50.0, scores[VlTasks.Vqa], 9);          // "zero" and " yes " (trimmed) are right, "no" and "yes!" are not
        Assert.Equal(100.0, scores[VlTasks.Caption], 9);     // a caption identical to its reference
        Assert.Equal(75.0, scores[VlObjective.MeanMetric], 9);
        Assert.False(scores.ContainsKey(VlTasks.Gqa));
    }

    private (TextTokenizer Tokenizer, VisionLanguageBart Model, VlFeatures Features, List<VlExample> Examples, ImageDataset Images) Build()
    {
        var bpe = BpeTrainer.Train(["what digit is this? the two digits are the same. describe the image."], vocabSize: 300);
        bpe.Save(dir.Path, modelMaxLength: 256);
        var tokenizer = TextTokenizer.FromFolder(dir.Path);
        torch.manual_seed(3);
        var pixels = torch.rand(10, 1, 28, 28);
        var images = ImageDataset.FromTensor(pixels, OnePerClass, Enumerable.Range(0, 10).Select(i => i.ToString()).ToList());
        pixels.Dispose();
        var vit = new VisionTransformer(VitConfig.Tiny28());
        var examples = new List<VlExample>
        {
            new(VlTasks.Vqa, [new VlImage(VlImageSource.Digit, 3, 0)], "what digit is this?", "three"),
            new(VlTasks.Nlvr2, [new VlImage(VlImageSource.Digit, 4, 0), new VlImage(VlImageSource.Garment, 5, 1)], "the two digits are the same", "false"),
        };
        var features = VlFeatures.Compute(vit, examples, images, images);
        vit.Dispose();
        var config = new BartConfig
        {
            VocabSize = tokenizer.VocabSize, DModel = 24, EncoderLayers = 2, DecoderLayers = 2, EncoderAttentionHeads = 4, DecoderAttentionHeads = 3,
            EncoderFfnDim = 48, DecoderFfnDim = 40, MaxPositionEmbeddings = 128, InitStd = 0.3, Dropout = 0.1,
        };
        var model = new VisionLanguageBart(new BartForConditionalGeneration(config), features.Width);
        model.eval();
        return (tokenizer, model, features, examples, images);
    }

    [Fact]
    public void A_batch_puts_each_examples_image_patches_then_its_text_then_padding()
    {
        var (tokenizer, model, features, examples, _) = Build();
        using var _t = tokenizer;
        using var _m = model;
        using var _f = features;
        var source = new VlExamples(examples, features, tokenizer, model.Config);
        using var batch = source.MakeBatch([0, 1], CPU);
        int q0 = tokenizer.Encode("what digit is this?").Length, q1 = tokenizer.Encode("the two digits are the same").Length;
        int p = features.Patches;
        Assert.Equal(16, p);                      // the ViT's 7 x 7 patch tokens pooled to 4 x 4
        int l = Math.Max(p + q0, 2 * p + q1);
        Assert.Equal(new long[] { 2, 2 * p, 64 }, batch.ImageFeatures.shape);
        Assert.Equal(new long[] { 2, l }, batch.Layout.shape);
        // Example 0: its text (slots 2p + j), its one image's patches (slots 0..p-1), then padding (masked).
        var layout = batch.Layout.data<long>().ToArray();
        var mask = batch.AttentionMask.data<long>().ToArray();
        long[] row0 = [.. Enumerable.Range(0, q0).Select(j => 2L * p + j), .. Enumerable.Range(0, p).Select(j => (long)j), .. new long[l - p - q0]];
        long[] row1 = [.. Enumerable.Range(0, q1).Select(j => 2L * p + j), .. Enumerable.Range(0, 2 * p).Select(j => (long)j), .. new long[l - 2 * p - q1]];
        Assert.Equal(row0, layout[..l]);
        Assert.Equal(row1, layout[l..]);
        Assert.Equal(p + q0, mask[..l].Sum());
        Assert.Equal(2 * p + q1, mask[l..].Sum());
        // Example 0's second image slot is zeros; example 1's second slot is its right image's features.
        Assert.Equal(0.0, batch.ImageFeatures[0].narrow(0, p, p).abs().sum().ToDouble());
        var right = features.Table[features.Rows[examples[1].Images[1]]];
        Assert.True(batch.ImageFeatures[1].narrow(0, p, p).allclose(right));
        Assert.Equal(tokenizer.Encode("false"), batch.Labels[1].data<long>().ToArray().Where(v => v != -100).Select(v => (int)v).ToArray());
    }

    [Fact]
    public void The_encoder_reads_projected_patches_then_text_embeddings_and_cached_generation_matches_uncached()
    {
        var (tokenizer, model, features, examples, _) = Build();
        using var _t = tokenizer;
        using var _m = model;
        using var _f = features;
        var source = new VlExamples(examples, features, tokenizer, model.Config);
        using var batch = source.MakeBatch([0, 1], CPU);
        using var _g = no_grad();
        using var states = model.Encode(batch);
        // Example 1 fills its row (it is the longest): its states are BART's encoder on [embed(text) ; projection(left; right)].
        var ids = tensor(tokenizer.Encode("the two digits are the same").Select(i => (long)i).ToArray()).unsqueeze(0);
        var patches = cat(new[] { features.Table[features.Rows[examples[1].Images[0]]], features.Table[features.Rows[examples[1].Images[1]]] }, 0).unsqueeze(0);
        var input = cat(new[] { model.bart.shared.call(ids), model.visual_projection.call(patches) }, 1);
        var expected = model.bart.encoder.forward(input, null);
        Assert.True(states[1].unsqueeze(0).allclose(expected, 1e-5, 1e-5));
        // Example 0 alone, without padding, gives the same states on its real positions.
        using var single = source.MakeBatch([0], CPU);
        using var alone = model.Encode(single);
        Assert.True(states[0].narrow(0, 0, alone.shape[1]).allclose(alone[0], 1e-5, 1e-5));

        using var cached = model.Generate(batch, new GenerationOptions { MaxNewTokens = 6 });
        using var uncached = model.Generate(batch, new GenerationOptions { MaxNewTokens = 6, UseCache = false });
        Assert.Equal(cached.Sequences, uncached.Sequences);
        Assert.Equal(2, cached.Sequences.Count);
    }

    [Fact]
    public void Features_are_the_vits_last_layer_patch_tokens_averaged_over_adaptive_windows_of_its_7_by_7_grid()
    {
        torch.manual_seed(5);
        var pixels = torch.rand(10, 1, 28, 28);
        var images = ImageDataset.FromTensor(pixels, OnePerClass, Enumerable.Range(0, 10).Select(i => i.ToString()).ToList());
        using var vit = new VisionTransformer(VitConfig.Tiny28());
        var im = new VlImage(VlImageSource.Garment, 2, 1);
        using var features = VlFeatures.Compute(vit, [new VlExample(VlTasks.Caption, [im], VlTasks.CaptionPrompt, "x")], images, images);
        using var _ = no_grad();
        // The turned image, run by hand: its tokens (1, 49, 64) in row-major 7 x 7 order.
        using var turned = tensor(VlTasks.Pixels(im, images, images), new long[] { 1, 1, 28, 28 });
        using var tokens = vit.PatchTokens(turned);
        Assert.Equal(new long[] { 1, 49, 64 }, tokens.shape);
        // Adaptive windows of 7 over 4 outputs: rows/cols [0, 2), [1, 4), [3, 6), [5, 7).
        (int, int)[] windows = [(0, 2), (1, 4), (3, 6), (5, 7)];
        var row = features.Table[features.Rows[im]];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
            {
                var cells = new List<long>();
                for (int y = windows[i].Item1; y < windows[i].Item2; y++)
                    for (int x = windows[j].Item1; x < windows[j].Item2; x++) cells.Add(y * 7 + x);
                var mean = tokens[0].index_select(0, tensor(cells.ToArray())).mean(new long[] { 0 });
                Assert.True(row[i * 4 + j].allclose(mean, 1e-5, 1e-6), $"pooled token ({i}, {j})");
            }
        pixels.Dispose();
    }
}
