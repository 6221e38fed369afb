using CoeffTune.Adapters;
using CoeffTune.Methods;
using CoeffTune.Models;
using TorchSharp;
using static TorchSharp.torch;
using static CoeffTune.Tests.TestUtil;

namespace CoeffTune.Tests.Methods;

/// <summary>What the tests of the methods share: a ViT-B-shaped model, perturbed adapters, and an adapter-file round trip.</summary>
internal static class MethodTestKit
{
    /// <summary>ViT-B/16's blocks (D 768, 12 layers, 12 heads, MLP 3072) on a 32 x 32 image: the methods' counts do not depend on the image.</summary>
    public static VisionTransformer VitBaseShape() =>
        new(new VitConfig { ImageSize = 32, PatchSize = 16, Channels = 3, Dim = 768, Depth = 12, Heads = 12, MlpDim = 3072, Classes = 10 });

    /// <summary>Every trainable tensor moved off its initial value (a zero-initialised part then contributes).</summary>
    public static void Perturb(PeftModel peft, int seed, double scale = 0.1)
    {
        torch.manual_seed(seed);
        using var _ = no_grad();
        var state = peft.Model.state_dict();
        foreach (var name in peft.TrainableNames) state[name].add_(randn_like(state[name]) * scale);
    }

    /// <summary>Tiny models of both families with a batch each, in evaluation mode.</summary>
    public static (TransformerClassifier Model, Batch Batch)[] Tiny(int seed = 0) =>
        [(TinyModels.Bert(seed), TinyModels.TextBatch()), (TinyModels.Vit(seed), TinyModels.ImageBatch())];

    /// <summary>A fresh copy of the tiny model of <paramref name="architecture"/>, built from the same seed.</summary>
    public static TransformerClassifier Fresh(string architecture, int seed = 0) => architecture == "bert" ? TinyModels.Bert(seed) : TinyModels.Vit(seed);

    /// <summary>
    /// On each tiny model wrapped with <paramref name="recipe"/> and perturbed: the update changes the outputs (so the
    /// check means something), merging names <paramref name="method"/> and keeps the outputs within 1e-5, and
    /// unmerging restores every weight within 1e-6.
    /// </summary>
    public static void AssertMergeIsExact(string recipe, string method, int seed)
    {
        using var scope = NewDisposeScope();
        foreach (var (model, batch) in Tiny())
        {
            var peft = PeftModel.Wrap(model, recipe);
            Perturb(peft, seed);
            model.eval();
            var unmerged = model.forward(batch);
            using (peft.DisableAdapters())
                Assert.True(MaxAbsDiff(unmerged, model.forward(batch)) > 1e-3, "the update must change the outputs for the test to mean anything");
            var weights = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var summary = peft.Merge();
            Assert.Contains("merged", summary);
            Assert.Contains(method, summary);
            Assert.True(MaxAbsDiff(unmerged, model.forward(batch)) <= 1e-5, $"{recipe} on {model.Architecture}: merged differs by {MaxAbsDiff(unmerged, model.forward(batch))}");
            peft.Unmerge();
            foreach (var (name, w) in model.state_dict())
                Assert.True(MaxAbsDiff(weights[name], w) <= 1e-6, $"{name} not restored");
        }
    }

    /// <summary>
    /// Wraps each tiny model with <paramref name="recipe"/>, perturbs it, saves the adapter, loads it onto a fresh base
    /// model and returns the largest difference between the two models' logits (evaluation mode).
    /// </summary>
    public static double RoundTripDifference(string recipe, IReadOnlyDictionary<string, System.Text.Json.Nodes.JsonObject>? options = null)
    {
        double worst = 0;
        using var tmp = new TempDir();
        foreach (var (model, batch) in Tiny())
        {
            var peft = PeftModel.Wrap(model, recipe, options);
            Perturb(peft, 5);
            model.eval();
            var expected = model.forward(batch);
            var dir = Path.Combine(tmp.Path, model.Architecture);
            AdapterFile.Save(peft, dir, "tiny", ["a", "b", "c"]);
            var fresh = Fresh(model.Architecture);
            var loaded = AdapterFile.Load(fresh, dir);
            Assert.Equal(peft.Recipe, loaded.Recipe);
            Assert.Equal(peft.TrainableNames.OrderBy(n => n), loaded.TrainableNames.OrderBy(n => n));
            fresh.eval();
            worst = Math.Max(worst, MaxAbsDiff(expected, fresh.forward(batch)));
        }
        return worst;
    }

    /// <summary>The trainable parameters of <paramref name="recipe"/> on the ViT-B shape, head excluded.</summary>
    public static long VitBaseCount(string recipe)
    {
        using var scope = NewDisposeScope();
        using var model = VitBaseShape();
        var r = PeftModel.Wrap(model, recipe).Report();
        Assert.Equal(768 * 10 + 10, r.Head);
        return r.Total - r.Head;
    }

    /// <summary>Central finite difference of <paramref name="f"/> in entry <paramref name="index"/> (flattened) of <paramref name="p"/>.</summary>
    public static double FiniteDifference(Func<double> f, Tensor p, long index, double eps = 1e-6)
    {
        using var _ = no_grad();
        var flat = p.view(-1);
        double x0 = flat[index].ToDouble();
        flat[index].fill_(x0 + eps);
        double up = f();
        flat[index].fill_(x0 - eps);
        double down = f();
        flat[index].fill_(x0);
        return (up - down) / (2 * eps);
    }
}
